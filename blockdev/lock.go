package blockdev

import (
	"errors"
	"fmt"
)

// ErrLocked is matched (via errors.Is) by every [*LockedError]: another
// process holds the lock of the device or directory.
var ErrLocked = errors.New("blockdev: locked by another process")

// LockedError reports a lock that another process kept for longer than the
// caller was willing to wait.
type LockedError struct {
	Path   string // the device, image file or directory
	Holder string // "pid 1234 (savecore)" when /proc/locks names it, else ""
	Waited string // how long the caller waited, e.g. "30s"
}

// Error names the path, the holder and the wait.
func (e *LockedError) Error() string {
	who := "another process"
	if e.Holder != "" {
		who = e.Holder
	}
	return fmt.Sprintf("blockdev: %s is locked by %s (waited %s): another savecore or dumpformat is using it", e.Path, who, e.Waited)
}

// Is reports whether target is [ErrLocked].
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
