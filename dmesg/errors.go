package dmesg

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors that callers branch on. The typed errors below wrap them.
var (
	// ErrUnsupportedArch means the dumped machine's architecture is not one
	// whose addresses this package can translate (doc/DMESG.md §7).
	ErrUnsupportedArch = errors.New("dmesg: unsupported architecture")
	// ErrNoLogSymbols means the symbols name no known log layout
	// (doc/DMESG.md §1).
	ErrNoLogSymbols = errors.New("dmesg: no log symbols")
	// ErrMissingKey means a key that the chosen layout needs is absent.
	ErrMissingKey = errors.New("dmesg: missing key")
	// ErrBadAddress means a kernel address cannot be translated or points at
	// memory that the dump does not hold.
	ErrBadAddress = errors.New("dmesg: bad address")
	// ErrCorrupt means a value read from the dumped memory is impossible.
	ErrCorrupt = errors.New("dmesg: corrupt log")
	// ErrSyntax means a VMCOREINFO text or System.map is malformed.
	ErrSyntax = errors.New("dmesg: syntax error")
	// ErrNotFound means no VMCOREINFO page was found in the dumped memory.
	ErrNotFound = errors.New("dmesg: VMCOREINFO not found")
	// ErrMapMismatch means a System.map does not belong to the dump.
	ErrMapMismatch = errors.New("dmesg: System.map does not match the dump")
	// ErrNoSymbol means a symbol is not in a System.map.
	ErrNoSymbol = errors.New("dmesg: no such symbol")
	// ErrAmbiguousSymbol means a System.map lists a name at several addresses.
	ErrAmbiguousSymbol = errors.New("dmesg: ambiguous symbol")
)

// ArchError names an architecture this package does not read.
type ArchError struct {
	Machine string // utsname.machine or the name given, e.g. "ppc64"
}

func (e *ArchError) Error() string {
	return fmt.Sprintf("dmesg: %s: reading the kernel log is not supported", e.Machine)
}

// Unwrap returns ErrUnsupportedArch.
func (e *ArchError) Unwrap() error { return ErrUnsupportedArch }

// SyntaxError locates a malformed line in a VMCOREINFO text or System.map.
type SyntaxError struct {
	Source string // "VMCOREINFO" or "System.map"
	Line   int    // 1-based line number
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("dmesg: %s line %d: %s", e.Source, e.Line, e.Msg)
}

// Unwrap returns ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// KeyError names keys that are absent from a VMCOREINFO or System.map.
type KeyError struct {
	Layout Layout   // the layout that needs them, or 0 when none applies
	Keys   []string // the missing keys, e.g. "SYMBOL(log_end)"
}

func (e *KeyError) Error() string {
	s := "dmesg: missing " + strings.Join(e.Keys, ", ")
	if e.Layout != 0 {
		s += " (needed by the " + e.Layout.String() + " log)"
	}
	return s
}

// Unwrap returns ErrMissingKey.
func (e *KeyError) Unwrap() error { return ErrMissingKey }

// AddrError reports a kernel virtual or physical address that could not be
// read: the field it was read for, the address and the cause.
type AddrError struct {
	Field string // what was being read, e.g. "log_buf" or "prb.desc_ring.descs"
	Addr  uint64 // virtual address, or physical when Phys is set
	Phys  bool
	Err   error
}

func (e *AddrError) Error() string {
	kind := "address"
	if e.Phys {
		kind = "physical address"
	}
	return fmt.Sprintf("dmesg: %s at %s 0x%x: %s", e.Field, kind, e.Addr, trimPkg(e.Err))
}

// Unwrap returns ErrBadAddress and the cause (for example the Memory's
// error for a page that is not in the dump), so that errors.Is matches both.
func (e *AddrError) Unwrap() []error {
	if errors.Is(e.Err, ErrBadAddress) {
		return []error{e.Err}
	}
	return []error{ErrBadAddress, e.Err}
}

// CorruptError reports an impossible value read from the dumped memory.
type CorruptError struct {
	Layout Layout // the layout being decoded
	Field  string // e.g. "log_buf_len" or "log_first_idx"
	Value  uint64 // the value read
	Msg    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("dmesg: %s log: %s = 0x%x: %s", e.Layout, e.Field, e.Value, e.Msg)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// MismatchError says why a System.map does not belong to a dump: the text at
// the map's symbol differs from what the dump header says.
type MismatchError struct {
	Symbol string // the symbol read, e.g. "system_utsname"
	Field  string // "release", "version", "machine", "nodename" or "banner"
	Want   string // from the dump header
	Got    string // found in memory at the symbol's address
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("dmesg: System.map does not match the dump: %s at %s is %q, the dump has %q",
		e.Field, e.Symbol, e.Got, e.Want)
}

// Unwrap returns ErrMapMismatch.
func (e *MismatchError) Unwrap() error { return ErrMapMismatch }

// trimPkg drops a leading "dmesg: " so that wrapped messages do not repeat it.
func trimPkg(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), "dmesg: ")
}
