//go:build !linux

package guest

func removeMemlock() error { return nil }

// RemoveMemlock is removeMemlock for checks outside this package.
func RemoveMemlock() error { return nil }

func memlockLimited() bool { return false }
