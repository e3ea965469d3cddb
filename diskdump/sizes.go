package diskdump

import (
	"iter"
	"slices"
)

// Sizes returns every partition_size the next panic may sample with on a
// device of deviceBlocks blocks (doc/FORMAT.md §3.2): the device itself, then
// min(TotalBlocks, device) when TotalBlocks is set, then min(v, device)
// for each value of Also; each size once, with the first source that
// gave it (TotalFrom for TotalBlocks, SizeFromModule when empty).
func (fp FormatParams) Sizes(deviceBlocks uint64) []SampleSize {
	source := fp.TotalFrom
	if source == "" {
		source = SizeFromModule
	}
	out := []SampleSize{{Blocks: deviceBlocks, Source: SizeFromDevice}}
	add := func(s SampleSize) {
		s.Blocks = min(s.Blocks, deviceBlocks)
		if s.Blocks == 0 || slices.ContainsFunc(out, func(e SampleSize) bool { return e.Blocks == s.Blocks }) {
			return
		}
		out = append(out, s)
	}
	if fp.TotalBlocks != 0 {
		add(SampleSize{Blocks: fp.TotalBlocks, Source: source})
	}
	for _, s := range fp.Also {
		add(s)
	}
	return out
}

// Tail is the tail chunk of the kernel's sampling of one partition_size.
type Tail struct {
	Size  SampleSize // the partition_size (clamped to the device) and its source
	Chunk Chunk      // the chunk ending at Size.Blocks
	Bad   uint64     // blocks of the chunk without a valid signature (CheckPartition)
}

// tails returns the tail chunks of the samplings of every size of Sizes
// that has one (doc/FORMAT.md §3.2): chunks off the grid, which a format over the
// device's grid alone would miss.
func (fp FormatParams) tails(deviceBlocks uint64) []Tail {
	var out []Tail
	for _, s := range fp.Sizes(deviceBlocks) {
		if c, ok := tailChunk(s.Blocks, fp); ok {
			out = append(out, Tail{Size: s, Chunk: c})
		}
	}
	return out
}

// unionChunks yields, in ascending order and merged where they touch or
// overlap, the chunks of grid (ascending) and of extras (any order),
// clipped to [from, limit).
func unionChunks(grid iter.Seq[Chunk], extras []Chunk, from, limit uint64) iter.Seq[Chunk] {
	return func(yield func(Chunk) bool) {
		extras := slices.Clone(extras)
		slices.SortFunc(extras, func(a, b Chunk) int { return cmpUint64(a.Blk, b.Blk) })
		var cur Chunk
		have := false
		// add takes chunks in ascending order of Blk and merges them.
		add := func(c Chunk) bool {
			if c.Blk < from {
				c.N -= min(c.N, from-c.Blk)
				c.Blk = from
			}
			if c.Blk >= limit {
				return true
			}
			c.N = min(c.N, limit-c.Blk)
			if c.N == 0 {
				return true
			}
			if have && c.Blk <= cur.Blk+cur.N {
				cur.N = max(cur.N, c.Blk+c.N-cur.Blk)
				return true
			}
			if have && !yield(cur) {
				return false
			}
			cur, have = c, true
			return true
		}
		for c := range grid {
			for len(extras) > 0 && extras[0].Blk <= c.Blk {
				if !add(extras[0]) {
					return
				}
				extras = extras[1:]
			}
			if !add(c) {
				return
			}
		}
		for _, e := range extras {
			if !add(e) {
				return
			}
		}
		if have {
			yield(cur)
		}
	}
}

// checkedChunks is what CheckPartition reads: the sampling grid over the
// whole device and the tail chunk of every size of Sizes, block 0
// included (the check skips block 2). A negative sample_rate checks
// nothing, as in the kernel.
func (fp FormatParams) checkedChunks(deviceBlocks uint64) iter.Seq[Chunk] {
	if fp.SampleRate < 0 {
		return func(func(Chunk) bool) {}
	}
	var extras []Chunk
	for _, t := range fp.tails(deviceBlocks) {
		extras = append(extras, t.Chunk)
	}
	return unionChunks(SampledChunks(deviceBlocks, fp.BlockOrder, fp.SampleRate), extras, 0, deviceBlocks)
}
