package vmcore

import (
	"cmp"
	"slices"
)

// FlattenedRange is the half-open byte range [Off, End) of a rearranged file.
type FlattenedRange struct {
	Off int64
	End int64
}

// Len is the number of bytes in the range.
func (r FlattenedRange) Len() int64 { return r.End - r.Off }

// DefaultFlattenedMaxRanges is the number of disjoint ranges a
// FlattenedCoverage keeps when its caller sets no limit (4 MiB of ranges).
const DefaultFlattenedMaxRanges = 1 << 18

// FlattenedCoverage is the set of byte ranges of a rearranged file that the
// applied records of a flattened stream wrote, so that a caller can tell which
// parts of a torn vmcore arrived. Records of real streams are mostly adjacent
// and merge into few ranges; for hostile streams the set is bounded: past
// maxRanges disjoint ranges the smallest are forgotten and Lossy reports it.
// A forgotten range only under-reports: every byte in Ranges was written.
// The zero value is an empty set with DefaultFlattenedMaxRanges.
type FlattenedCoverage struct {
	ranges    []FlattenedRange // ranges[:sorted] sorted and disjoint; the rest in arrival order
	sorted    int
	maxRanges int
	lossy     bool
}

// NewFlattenedCoverage returns an empty set that keeps at most maxRanges
// disjoint ranges (DefaultFlattenedMaxRanges when maxRanges <= 0).
func NewFlattenedCoverage(maxRanges int) *FlattenedCoverage {
	return &FlattenedCoverage{maxRanges: maxRanges}
}

// Add records that [off, off+n) was written. Empty or negative ranges are
// ignored.
func (c *FlattenedCoverage) Add(off, n int64) {
	if n <= 0 || off < 0 {
		return
	}
	r := FlattenedRange{Off: off, End: off + n}
	if k := len(c.ranges); k > c.sorted {
		// Streams mostly continue where the last record ended: merge with it.
		if last := &c.ranges[k-1]; r.Off <= last.End && last.Off <= r.End {
			last.Off, last.End = min(last.Off, r.Off), max(last.End, r.End)
			return
		}
	}
	c.ranges = append(c.ranges, r)
	// Sorting when the unsorted tail outgrows the sorted part keeps Add
	// amortised O(log n) and the slice within twice the limit.
	if len(c.ranges)-c.sorted > max(c.sorted, 1024) {
		c.compact()
	}
}

// compact sorts and merges the ranges, then drops the smallest ones beyond
// the limit.
func (c *FlattenedCoverage) compact() {
	slices.SortFunc(c.ranges, func(a, b FlattenedRange) int { return cmp.Compare(a.Off, b.Off) })
	out := c.ranges[:0]
	for _, r := range c.ranges {
		if k := len(out); k > 0 && r.Off <= out[k-1].End {
			out[k-1].End = max(out[k-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	limit := c.maxRanges
	if limit <= 0 {
		limit = DefaultFlattenedMaxRanges
	}
	if len(out) > limit {
		c.lossy = true
		slices.SortStableFunc(out, func(a, b FlattenedRange) int { return cmp.Compare(b.Len(), a.Len()) })
		out = out[:limit]
		slices.SortFunc(out, func(a, b FlattenedRange) int { return cmp.Compare(a.Off, b.Off) })
	}
	clear(c.ranges[len(out):])
	c.ranges = out
	c.sorted = len(out)
}

// Ranges returns the covered ranges, sorted, disjoint and not adjacent. The
// slice belongs to the set until the next Add.
func (c *FlattenedCoverage) Ranges() []FlattenedRange {
	if c.sorted != len(c.ranges) {
		c.compact()
	}
	return c.ranges
}

// Bytes is the number of bytes covered.
func (c *FlattenedCoverage) Bytes() int64 {
	var n int64
	for _, r := range c.Ranges() {
		n += r.Len()
	}
	return n
}

// Contains reports whether every byte of [off, off+n) is covered. An empty
// range is covered.
func (c *FlattenedCoverage) Contains(off, n int64) bool {
	if n <= 0 {
		return true
	}
	rs := c.Ranges()
	i, _ := slices.BinarySearchFunc(rs, off, func(r FlattenedRange, off int64) int {
		if r.End <= off {
			return -1
		}
		if r.Off > off {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Off <= off && off+n <= rs[i].End
}

// Lossy reports whether ranges were forgotten to stay within the limit.
func (c *FlattenedCoverage) Lossy() bool { return c.lossy }
