package lzo

// Decompress decodes the LZO1X stream src into dst and returns the number
// of bytes written. The stream must end with its end marker and nothing
// after it. Bad input gives ErrCorrupt or ErrOutputOverrun; Decompress
// never reads outside src nor writes outside dst.
func Decompress(dst, src []byte) (int, error) {
	d := decoder{dst: dst, src: src}
	if err := d.run(); err != nil {
		return d.op, err
	}
	return d.op, nil
}

// decoder is the state of one Decompress.
type decoder struct {
	dst, src []byte
	ip, op   int
	// state is what the last instruction left: the literals it copied
	// (0 to 3), or 4 after a run of 4 or more literals.
	state int
}

func (d *decoder) byte() (int, bool) {
	if d.ip >= len(d.src) {
		return 0, false
	}
	b := d.src[d.ip]
	d.ip++
	return int(b), true
}

// ext reads a length extension: 255 per zero byte, plus the first
// non-zero byte. The count of zero bytes is bounded by the input.
func (d *decoder) ext(base int) (int, bool) {
	n := base
	for {
		b, ok := d.byte()
		switch {
		case !ok:
			return 0, false
		case b != 0:
			return n + b, true
		}
		n += 255
		if n > len(d.dst)+255 { // longer than any output: give up early
			return 0, false
		}
	}
}

// literals copies n literals from src to dst.
func (d *decoder) literals(n int) error {
	if n > len(d.src)-d.ip {
		return ErrCorrupt
	}
	if n > len(d.dst)-d.op {
		return ErrOutputOverrun
	}
	copy(d.dst[d.op:], d.src[d.ip:d.ip+n])
	d.ip += n
	d.op += n
	return nil
}

// copyMatch copies n bytes from dist bytes back in dst (the runs may
// overlap: a byte at a time).
func (d *decoder) copyMatch(dist, n int) error {
	if dist <= 0 || dist > d.op {
		return ErrCorrupt
	}
	if n > len(d.dst)-d.op {
		return ErrOutputOverrun
	}
	from := d.op - dist
	if dist >= n {
		copy(d.dst[d.op:d.op+n], d.dst[from:from+n])
	} else {
		for i := range n {
			d.dst[d.op+i] = d.dst[from+i]
		}
	}
	d.op += n
	return nil
}

func (d *decoder) run() error {
	if len(d.src) == 0 {
		return ErrCorrupt
	}
	if first := int(d.src[0]); first > 17 {
		d.ip = 1
		t := first - 17
		if err := d.literals(t); err != nil {
			return err
		}
		d.state = min(t, 4)
	}
	for {
		inst, ok := d.byte()
		if !ok {
			return ErrCorrupt
		}
		dist, n, end, err := d.instruction(inst)
		if err != nil {
			return err
		}
		if end {
			if d.ip != len(d.src) {
				return ErrCorrupt
			}
			return nil
		}
		if n == 0 { // a literal run
			continue
		}
		if err := d.copyMatch(dist, n); err != nil {
			return err
		}
		s := d.src[d.ip-2] & 3 // the S bits are in the instruction's last-but-one byte
		if err := d.literals(int(s)); err != nil {
			return err
		}
		d.state = int(s)
	}
}

// instruction decodes one instruction after its first byte inst: a match
// of n bytes at dist (n = 0 after a literal run, which it copies), or the
// end marker.
func (d *decoder) instruction(inst int) (dist, n int, end bool, err error) {
	var h int
	switch {
	case inst >= 64:
		if h, err = d.next(); err != nil {
			return
		}
		return h<<3 + (inst>>2)&7 + 1, inst>>5 + 1, false, nil
	case inst >= 32:
		n = inst & 31
		if n == 0 {
			var ok bool
			if n, ok = d.ext(31); !ok {
				return 0, 0, false, ErrCorrupt
			}
		}
		if h, err = d.le16(); err != nil {
			return
		}
		return h>>2 + 1, n + 2, false, nil
	case inst >= 16:
		n = inst & 7
		if n == 0 {
			var ok bool
			if n, ok = d.ext(7); !ok {
				return 0, 0, false, ErrCorrupt
			}
		}
		if h, err = d.le16(); err != nil {
			return
		}
		dist = 16384 + (inst&8)<<11 + h>>2
		return dist, n + 2, dist == 16384, nil
	case d.state == 0:
		n = inst
		if n == 0 {
			var ok bool
			if n, ok = d.ext(15); !ok {
				return 0, 0, false, ErrCorrupt
			}
		}
		d.state = 4
		return 0, 0, false, d.literals(n + 3)
	case d.state < 4:
		if h, err = d.next(); err != nil {
			return
		}
		return h<<2 + inst>>2 + 1, 2, false, nil
	default:
		if h, err = d.next(); err != nil {
			return
		}
		return h<<2 + inst>>2 + 2049, 3, false, nil
	}
}

func (d *decoder) next() (int, error) {
	b, ok := d.byte()
	if !ok {
		return 0, ErrCorrupt
	}
	return b, nil
}

func (d *decoder) le16() (int, error) {
	if len(d.src)-d.ip < 2 {
		return 0, ErrCorrupt
	}
	v := int(d.src[d.ip]) | int(d.src[d.ip+1])<<8
	d.ip += 2
	return v, nil
}
