package dmesg

import (
	"strconv"
	"strings"
)

// release is the numeric start of a kernel release string: "2.6.9-89.ELsmp"
// is {2, 6, 9}.
type release [3]int

// parseRelease reads up to three dot-separated numbers at the start of s.
func parseRelease(s string) (release, bool) {
	var r release
	for i := range 3 {
		j := 0
		for j < len(s) && j < 9 && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == 0 {
			return r, i >= 2
		}
		r[i], _ = strconv.Atoi(s[:j])
		s = s[j:]
		if !strings.HasPrefix(s, ".") {
			return r, i >= 1
		}
		s = s[1:]
	}
	return r, true
}

// less reports whether r is before a.b.c.
func (r release) less(a, b, c int) bool {
	o := release{a, b, c}
	for i := range 3 {
		if r[i] != o[i] {
			return r[i] < o[i]
		}
	}
	return false
}
