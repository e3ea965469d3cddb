package savecore

import (
	"errors"
	"fmt"
	"os"

	"github.com/dsnet/golib/unitconv"
)

// Sentinel errors that callers and tests branch on with errors.Is.
var (
	// ErrDirExists means the dump directory of this crash already holds
	// files and Options.Force is not set: nothing is overwritten.
	ErrDirExists = errors.New("savecore: dump directory already exists")
	// ErrNoSpace means the dump root lacks the space the vmcore needs, even
	// after the diskdump-nospace script ran (or it declined or is absent).
	ErrNoSpace = errors.New("savecore: not enough free space")
	// ErrUnsafe means a directory or script that savecore would trust is
	// writable by others: a group- or world-writable dump root without the
	// sticky bit, or a script (or its directory) not owned by root or us or
	// writable by group or others.
	ErrUnsafe = errors.New("savecore: unsafe permissions")
	// ErrNotWritable means a dump must be erased (Options.Delete or
	// Options.DeleteOnly) but its device was not opened for writing.
	ErrNotWritable = errors.New("savecore: device not writable")
)

// SpaceError reports a failed free-space check.
type SpaceError struct {
	Dir  string // the dump directory the vmcore was meant for
	Need int64  // estimated size of the vmcore in bytes
	// Basis says what the estimate counts, e.g. "40960 pages stored whole".
	Basis string
	Free  uint64 // bytes available on the filesystem of the dump root
	// Script says what diskdump-nospace did: "absent", "declined" (exit 0),
	// "not trusted", or "ran" (non-zero exit, space checked again).
	Script string
}

// Error gives the sizes in IEC units.
func (e *SpaceError) Error() string {
	basis := ""
	if e.Basis != "" {
		basis = " (estimate: " + e.Basis + ")"
	}
	return fmt.Sprintf("savecore: %s: need %sB%s, %sB free (diskdump-nospace: %s)", e.Dir,
		iec(float64(e.Need)), basis, iec(float64(e.Free)), e.Script)
}

// Is reports whether target is ErrNoSpace.
func (e *SpaceError) Is(target error) bool { return target == ErrNoSpace }

// UnsafeError names a path whose ownership or mode savecore refuses.
type UnsafeError struct {
	Path string
	Mode os.FileMode
	UID  uint32 // owner, when known
	Why  string
}

// Error says what is wrong with the path.
func (e *UnsafeError) Error() string {
	return fmt.Sprintf("savecore: %s (mode %v, owner uid %d): %s", e.Path, e.Mode, e.UID, e.Why)
}

// Is reports whether target is ErrUnsafe.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

func iec(v float64) string { return unitconv.FormatPrefix(v, unitconv.IEC, 1) }
