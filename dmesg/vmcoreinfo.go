package dmesg

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// MaxVMCOREINFO bounds the VMCOREINFO text this package accepts. Kernels
// reserve one or two pages for it (doc/DMESG.md §6).
const MaxVMCOREINFO = 64 << 10

// VMCOREINFO is a parsed VMCOREINFO text: the KEY=VALUE lines a kernel
// publishes for dump tools (doc/DMESG.md §2).
type VMCOREINFO struct {
	OSRelease string // OSRELEASE, the kernel release
	PageSize  int    // PAGESIZE, 0 when absent

	text []byte
	keys map[string]string
}

// ParseVMCOREINFO parses a VMCOREINFO text. The text ends at the first NUL
// byte; its last line may lack a newline. Lines must be KEY=VALUE, and the
// values of SYMBOL, SIZE, OFFSET, LENGTH, NUMBER, PAGESIZE, KERNELOFFSET and
// CRASHTIME must be numbers; the first malformed line is reported as a
// *SyntaxError. The first occurrence of a repeated key wins.
func ParseVMCOREINFO(text []byte) (*VMCOREINFO, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	if len(text) > MaxVMCOREINFO {
		return nil, &SyntaxError{Source: "VMCOREINFO", Line: 0,
			Msg: fmt.Sprintf("text of %d bytes exceeds %d", len(text), MaxVMCOREINFO)}
	}
	v := &VMCOREINFO{text: bytes.Clone(text), keys: map[string]string{}}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	for i, line := range lines {
		if err := v.addLine(line); err != nil {
			return nil, &SyntaxError{Source: "VMCOREINFO", Line: i + 1, Msg: err.Error()}
		}
	}
	if len(text) == 0 {
		return nil, &SyntaxError{Source: "VMCOREINFO", Line: 1, Msg: "empty text"}
	}
	v.OSRelease = v.keys["OSRELEASE"]
	if ps, ok := v.keys["PAGESIZE"]; ok {
		n, _ := parseNumber(ps)
		v.PageSize = int(n)
	}
	return v, nil
}

// addLine checks one KEY=VALUE line and records it.
func (v *VMCOREINFO) addLine(line string) error {
	key, val, ok := strings.Cut(line, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not KEY=VALUE", clip(line))
	}
	if err := checkValue(key, val); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if _, dup := v.keys[key]; !dup {
		v.keys[key] = val
	}
	return nil
}

// checkValue checks the syntax of the values this package interprets.
func checkValue(key, val string) error {
	var err error
	switch {
	case strings.HasPrefix(key, "SYMBOL("), key == "KERNELOFFSET":
		_, err = strconv.ParseUint(val, 16, 64)
	case strings.HasPrefix(key, "SIZE("), strings.HasPrefix(key, "OFFSET("),
		strings.HasPrefix(key, "LENGTH("), strings.HasPrefix(key, "NUMBER("),
		key == "PAGESIZE", key == "CRASHTIME":
		_, err = parseNumber(val)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("bad number %q", clip(val))
	}
	return nil
}

// parseNumber reads a decimal number, optionally negative, or a 0x hex form.
func parseNumber(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	u := strings.TrimPrefix(s, "-")
	var n uint64
	var err error
	if h, ok := strings.CutPrefix(u, "0x"); ok {
		n, err = strconv.ParseUint(h, 16, 64)
	} else {
		n, err = strconv.ParseUint(u, 10, 64)
	}
	if err != nil {
		return 0, err
	}
	if neg {
		if n > 1<<63 {
			return 0, strconv.ErrRange
		}
		return -int64(n), nil
	}
	return int64(n), nil
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Bytes returns the text as parsed (up to the first NUL), suitable for a
// VMCOREINFO ELF note or a KDUMP sub-header.
func (v *VMCOREINFO) Bytes() []byte { return bytes.Clone(v.text) }

// Value returns the raw value of key, e.g. Value("BUILD-ID").
func (v *VMCOREINFO) Value(key string) (string, bool) {
	s, ok := v.keys[key]
	return s, ok
}

// Symbol returns the address in SYMBOL(name).
func (v *VMCOREINFO) Symbol(name string) (uint64, bool) {
	s, ok := v.keys["SYMBOL("+name+")"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

// Size returns SIZE(name).
func (v *VMCOREINFO) Size(name string) (int64, bool) { return v.number("SIZE(" + name + ")") }

// Offset returns OFFSET(name), name being "struct.field".
func (v *VMCOREINFO) Offset(name string) (int64, bool) { return v.number("OFFSET(" + name + ")") }

// Length returns LENGTH(name).
func (v *VMCOREINFO) Length(name string) (int64, bool) { return v.number("LENGTH(" + name + ")") }

// Number returns NUMBER(name).
func (v *VMCOREINFO) Number(name string) (int64, bool) { return v.number("NUMBER(" + name + ")") }

// KernelOffset returns KERNELOFFSET, the KASLR displacement.
func (v *VMCOREINFO) KernelOffset() (uint64, bool) {
	s, ok := v.keys["KERNELOFFSET"]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

// CrashTime returns CRASHTIME, the panic time in seconds since the epoch.
func (v *VMCOREINFO) CrashTime() (int64, bool) { return v.number("CRASHTIME") }

func (v *VMCOREINFO) number(key string) (int64, bool) {
	s, ok := v.keys[key]
	if !ok {
		return 0, false
	}
	n, err := parseNumber(s)
	return n, err == nil
}
