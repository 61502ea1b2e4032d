package matrix

// Dirname is the target's directory name inside a run directory.
// Kernel names are validated to be safe as path elements.
func (t Target) Dirname() string { return t.Kernel.Name + "-" + string(t.Arch) }

// Label is how a target is shown to people: "6.1/x86_64".
func (t Target) Label() string { return t.Kernel.Name + "/" + string(t.Arch) }
