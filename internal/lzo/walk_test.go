package lzo

import (
	"fmt"
)

// op is one instruction of a stream as walk reads it: a literal run
// (kind "lit", "lit-first", "lit-s" for the S bits of a match) or a match
// (kind "m1", "m2", "m3", "m4", with ext when its length has an extension).
type op struct {
	kind string
	n    int // literals or match length
	dist int // matches
	ext  bool
}

// walk lists the instructions of a stream written by Compress, reading the
// format on its own (not with decoder), so that tests can check which
// instruction the encoder chose. It does not check distances against the
// output.
func walk(z []byte) ([]op, error) {
	var ops []op
	i, state := 0, 0
	get := func() (int, error) {
		if i >= len(z) {
			return 0, fmt.Errorf("truncated at %d", i)
		}
		i++
		return int(z[i-1]), nil
	}
	ext := func(base int) (int, error) {
		n := base
		for {
			b, err := get()
			if err != nil {
				return 0, err
			}
			if b != 0 {
				return n + b, nil
			}
			n += 255
		}
	}
	lits := func(kind string, t int) {
		ops = append(ops, op{kind: kind, n: t})
		i += t
		state = min(t, 4)
	}
	if len(z) > 0 && z[0] > 17 {
		i = 1
		lits("lit-first", int(z[0])-17)
	}
	for i < len(z) {
		b, _ := get()
		var o op
		var err error
		var tail int // the two bytes with D and S
		switch {
		case b >= 64:
			h, err := get()
			if err != nil {
				return ops, err
			}
			o = op{kind: "m2", n: b>>5 + 1, dist: h<<3 + (b>>2)&7 + 1}
			tail = b
		case b >= 32 || b >= 16:
			kind, bits, base := "m3", 31, 31
			if b < 32 {
				kind, bits, base = "m4", 7, 7
			}
			o = op{kind: kind, n: b&bits + 2}
			if b&bits == 0 {
				if o.n, err = ext(base); err != nil {
					return ops, err
				}
				o.n += 2
				o.ext = true
			}
			lo, err := get()
			if err != nil {
				return ops, err
			}
			hi, err := get()
			if err != nil {
				return ops, err
			}
			o.dist = (lo | hi<<8) >> 2
			if kind == "m3" {
				o.dist++
			} else {
				o.dist += 16384 + (b&8)<<11
				if o.dist == 16384 {
					if i != len(z) {
						return ops, fmt.Errorf("%d bytes after the end marker", len(z)-i)
					}
					return append(ops, op{kind: "end"}), nil
				}
			}
			tail = lo
		case state == 0:
			t := b + 3
			if b == 0 {
				if t, err = ext(15); err != nil {
					return ops, err
				}
				t += 3
			}
			ops = append(ops, op{kind: "lit", n: t, ext: b == 0})
			i += t
			state = 4
			continue
		default:
			h, err := get()
			if err != nil {
				return ops, err
			}
			o = op{kind: "m1", n: 2, dist: h<<2 + b>>2 + 1}
			if state == 4 {
				o.n, o.dist = 3, o.dist+2048
			}
			tail = b
		}
		ops = append(ops, o)
		state = 0
		if s := tail & 3; s > 0 {
			lits("lit-s", s)
		}
	}
	return ops, fmt.Errorf("no end marker")
}
