package guest

import "errors"

// loadNamedModules loads kernel modules by name with their dependencies.
func loadNamedModules(names []string) error {
	return errors.New("loading modules by name is not implemented yet")
}
