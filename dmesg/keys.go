package dmesg

import "fmt"

// maxStruct bounds the SIZE and OFFSET values taken from a VMCOREINFO: the
// structures read here are far smaller.
const maxStruct = 1 << 12

// keys looks up the VMCOREINFO keys a layout needs and remembers the
// missing ones, so that one error lists them all.
type keys struct {
	info    *VMCOREINFO
	missing []string
	bad     error
}

// symbol returns SYMBOL(name).
func (k *keys) symbol(name string) uint64 {
	a, ok := k.info.Symbol(name)
	if !ok {
		k.missing = append(k.missing, "SYMBOL("+name+")")
	}
	return a
}

// size returns the first of SIZE(names...) present, or def when def >= 0
// and none is.
func (k *keys) size(def int64, names ...string) int {
	return k.get("SIZE", k.info.Size, def, names)
}

// offset returns the first of OFFSET(names...) present, or def when
// def >= 0 and none is.
func (k *keys) offset(def int64, names ...string) int {
	return k.get("OFFSET", k.info.Offset, def, names)
}

func (k *keys) get(kind string, look func(string) (int64, bool), def int64, names []string) int {
	for _, n := range names {
		if v, ok := look(n); ok {
			if (v < 0 || v > maxStruct) && k.bad == nil {
				k.bad = &CorruptError{Field: kind + "(" + n + ")", Value: uint64(v),
					Msg: fmt.Sprintf("VMCOREINFO value outside [0, %d]", maxStruct)}
			}
			return int(v)
		}
	}
	if def >= 0 {
		return int(def)
	}
	k.missing = append(k.missing, kind+"("+names[0]+")")
	return 0
}

// err reports the missing keys, then the first out-of-range value.
func (k *keys) err(l Layout) error {
	if len(k.missing) > 0 {
		return &KeyError{Layout: l, Keys: k.missing}
	}
	if ce, ok := k.bad.(*CorruptError); ok {
		ce.Layout = l
		return ce
	}
	return nil
}

// ChooseLayout picks the log layout from the keys present, as vmcore-dmesg
// does (doc/DMESG.md §1): SYMBOL(prb), else SYMBOL(log_first_idx), else
// SYMBOL(log_end).
func ChooseLayout(info *VMCOREINFO) (Layout, error) {
	if info == nil {
		return 0, fmt.Errorf("%w: no VMCOREINFO", ErrNoLogSymbols)
	}
	for _, c := range []struct {
		sym string
		l   Layout
	}{{"prb", Lockless}, {"log_first_idx", Structured}, {"log_end", Legacy}} {
		if _, ok := info.Symbol(c.sym); ok {
			return c.l, nil
		}
	}
	return 0, fmt.Errorf("%w: none of SYMBOL(prb), SYMBOL(log_first_idx), SYMBOL(log_end)", ErrNoLogSymbols)
}

// fits reports whether a field of n bytes at off lies inside a structure of
// size bytes.
func fits(off, n, size int) bool {
	return off >= 0 && n >= 0 && off <= size && n <= size-off
}
