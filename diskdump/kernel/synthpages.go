package kernel

import (
	"encoding/binary"
	"strconv"
)

// The page contents of the synthetic machine, generated from a 64-bit
// seed with the splitmix64 mixer.

// mix64 is the splitmix64 finaliser: a cheap, well-mixed hash of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// golden is splitmix64's increment, 2^64 divided by the golden ratio.
const golden = 0x9e3779b97f4a7c15

// stamp writes "seed S pfn P\n" at the start of the page.
func stamp(p []byte, seed, pfn uint64) {
	var b [64]byte
	s := append(b[:0], "seed "...)
	s = strconv.AppendUint(s, seed, 16)
	s = append(s, " pfn "...)
	s = strconv.AppendUint(s, pfn, 10)
	s = append(s, '\n')
	copy(p, s)
}

func fillRandom(p []byte, x uint64) {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x += golden
		v := mix64(x)
		p[i], p[i+1], p[i+2], p[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		p[i+4], p[i+5], p[i+6], p[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for ; i < len(p); i++ {
		x += golden
		p[i] = byte(mix64(x))
	}
}

var words = [64]string{
	"kernel", "eth0", "link", "up", "down", "scsi", "sda", "block", "error", "ok",
	"task", "pid", "memory", "page", "cache", "zone", "DMA", "Normal", "free", "swap",
	"ext3", "journal", "commit", "inode", "dentry", "irq", "timer", "cpu", "0x1f", "done",
	"init", "mount", "device", "driver", "reset", "retry", "queue", "buffer", "read", "write",
	"the", "a", "of", "to", "in", "is", "on", "for", "with", "at",
	"GET", "/index.html", "HTTP/1.1", "200", "404", "user", "root", "login", "session", "closed",
	"oracle", "db", "sync", "panic",
}

// fillText writes lines of words chosen by a PRNG: about 3:1 compressible.
func fillText(p []byte, x uint64) {
	i := 0
	col := 0
	for i < len(p) {
		x += golden
		v := mix64(x)
		for j := 0; j < 10 && i < len(p); j++ {
			w := words[v&63]
			v >>= 6
			i += copy(p[i:], w)
			col += len(w) + 1
			if i < len(p) {
				if col > 60 {
					p[i] = '\n'
					col = 0
				} else {
					p[i] = ' '
				}
				i++
			}
		}
	}
}

// fillPattern writes an array of 32-byte "structs": a kernel-looking
// pointer, a counter, a flags word and a constant, like slab contents.
func fillPattern(p []byte, x, pfn uint64, pageSize int) {
	base := 0xffff810000000000 + pfn*uint64(pageSize)
	flags := mix64(x) & 0xffff
	magic := mix64(x+1) | 1
	i := 0
	for n := uint64(0); i+32 <= len(p); n++ {
		binary.LittleEndian.PutUint64(p[i:], base+n*32)
		binary.LittleEndian.PutUint64(p[i+8:], n)
		binary.LittleEndian.PutUint64(p[i+16:], flags^(n&3))
		binary.LittleEndian.PutUint64(p[i+24:], magic)
		i += 32
	}
	clear(p[i:])
}
