package vmcore

import (
	"fmt"
	"slices"
)

// salvageELF describes an ELF vmcore rebuilt from a torn stream
// (doc/FLATTENED.md §7). An ELF file has no status to mark it incomplete, and
// a page's place is fixed by its PT_LOAD, so nothing is moved: the bytes of
// PT_LOAD data that did not arrive are holes that read as zeros, the file is
// extended to its last PT_LOAD (within limit) so that they do, and the
// result counts and lists them.
func salvageELF(res *UnflattenResult, f ReadWriterAt, limit int64) error {
	cov := res.Rearrange.Coverage
	v, err := Open(f, res.Size)
	if err != nil {
		return fmt.Errorf("vmcore: torn flattened stream: no usable ELF program headers arrived: %w: %w", ErrFlattenedNoHeader, err)
	}
	if !cov.Contains(0, elf32EhdrSize) {
		return fmt.Errorf("vmcore: torn flattened stream: the ELF header did not arrive: %w", ErrFlattenedNoHeader)
	}
	res.Pages = v.NumPages()
	ranges := cov.Ranges()
	for _, l := range v.loads {
		end := int64(l.off + l.filesz)
		if end <= limit {
			res.Size = max(res.Size, end)
		}
		elfHoles(res, ranges, int64(l.off), end)
	}
	return nil
}

// elfHoles adds to res the parts of [off, end) that no range covers.
func elfHoles(res *UnflattenResult, ranges []FlattenedRange, off, end int64) {
	i, _ := slices.BinarySearchFunc(ranges, off, func(r FlattenedRange, off int64) int {
		if r.End <= off {
			return -1
		}
		return 1
	})
	at := off
	for ; at < end && i < len(ranges) && ranges[i].Off < end; i++ {
		if ranges[i].Off > at {
			addHole(res, at, ranges[i].Off)
		}
		at = max(at, ranges[i].End)
	}
	if at < end {
		addHole(res, at, end)
	}
}

func addHole(res *UnflattenResult, off, end int64) {
	res.HoleBytes += end - off
	if len(res.Holes) < maxReportedHoles {
		res.Holes = append(res.Holes, FlattenedRange{Off: off, End: end})
	}
}
