package dmesg

import "fmt"

// readLegacy reads the flat character ring of kernels before 3.5
// (doc/DMESG.md §5). log_end is an unsigned long before 2.6.25 and 4 bytes
// from 2.6.25.
func readLegacy(k *kmem, info *VMCOREINFO) (*Log, error) {
	ks := keys{info: info}
	bufSym, lenSym, endSym := ks.symbol("log_buf"), ks.symbol("log_buf_len"), ks.symbol("log_end")
	if err := ks.err(Legacy); err != nil {
		return nil, err
	}
	rel, ok := parseRelease(info.OSRelease)
	if !ok {
		return nil, &KeyError{Layout: Legacy, Keys: []string{"OSRELEASE (a release like 2.6.9, for the width of log_end)"}}
	}
	endSize := 4
	if rel.less(2, 6, 25) {
		endSize = k.word
	}
	buf, err := k.ulong("log_buf", bufSym)
	if err != nil {
		return nil, err
	}
	blen, err := k.uint("log_buf_len", lenSym, 4)
	if err != nil {
		return nil, err
	}
	end, err := k.uint("log_end", endSym, endSize)
	if err != nil {
		return nil, err
	}
	if blen == 0 || blen > MaxRead || blen&(blen-1) != 0 {
		return nil, &CorruptError{Layout: Legacy, Field: "log_buf_len", Value: blen,
			Msg: fmt.Sprintf("not a power of two in (0, %d]", MaxRead)}
	}
	ring, err := k.virt("log_buf", buf, int(min(end, blen)))
	if err != nil {
		return nil, err
	}
	if end >= blen {
		ring = unrollLegacy(ring, end)
	}
	return &Log{Layout: Legacy, Raw: ring}, nil
}

// unrollLegacy returns the bytes of a full ring in the order they were
// written: log_end counts every byte ever written, so the oldest byte sits
// at log_end modulo the ring's size, a power of two.
func unrollLegacy(ring []byte, end uint64) []byte {
	if end < uint64(len(ring)) {
		return ring[:end]
	}
	i := end & uint64(len(ring)-1)
	out := make([]byte, 0, len(ring))
	return append(append(out, ring[i:]...), ring[:i]...)
}

// LegacyRing lays text out as a kernel before 3.5 keeps its log: a ring of
// bufLen bytes (a power of two) in which byte i of the text sits at i modulo
// bufLen, and the matching log_end, the number of bytes ever written. A text
// longer than the ring wraps, leaving its last bufLen bytes. The synthetic
// machines of dumpformat -R use it, so that they and this package's tests
// share one implementation.
func LegacyRing(text []byte, bufLen int) (ring []byte, logEnd uint64, err error) {
	if bufLen <= 0 || bufLen > MaxRead || bufLen&(bufLen-1) != 0 {
		return nil, 0, fmt.Errorf("dmesg: ring size %d is not a power of two in (0, %d]", bufLen, MaxRead)
	}
	ring = make([]byte, bufLen)
	start := max(0, len(text)-bufLen)
	for i := start; i < len(text); i++ {
		ring[i&(bufLen-1)] = text[i]
	}
	return ring, uint64(len(text)), nil
}
