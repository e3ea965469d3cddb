package vmcore

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlattenedCoverage(t *testing.T) {
	type add struct{ off, n int64 }
	for _, tc := range []struct {
		name string
		adds []add
		want []FlattenedRange
	}{
		{name: "empty"},
		{name: "ignored", adds: []add{{0, 0}, {5, -1}, {-3, 10}}},
		{name: "adjacent ascending", adds: []add{{0, 10}, {10, 5}, {15, 1}}, want: []FlattenedRange{{0, 16}}},
		{name: "adjacent descending", adds: []add{{20, 10}, {10, 10}, {0, 10}}, want: []FlattenedRange{{0, 30}}},
		{name: "gaps", adds: []add{{100, 10}, {0, 10}, {50, 1}}, want: []FlattenedRange{{0, 10}, {50, 51}, {100, 110}}},
		{name: "overlaps", adds: []add{{0, 10}, {5, 10}, {30, 5}, {2, 3}, {28, 10}}, want: []FlattenedRange{{0, 15}, {28, 38}}},
		{name: "bridging", adds: []add{{0, 10}, {20, 10}, {10, 10}}, want: []FlattenedRange{{0, 30}}},
		{name: "covering", adds: []add{{5, 1}, {7, 1}, {0, 100}}, want: []FlattenedRange{{0, 100}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c FlattenedCoverage
			var total int64
			for _, a := range tc.adds {
				c.Add(a.off, a.n)
			}
			for _, r := range tc.want {
				total += r.Len()
			}
			assert.Equal(t, tc.want, c.Ranges())
			assert.Equal(t, total, c.Bytes())
			assert.False(t, c.Lossy())
		})
	}
}

func TestFlattenedCoverageContains(t *testing.T) {
	c := NewFlattenedCoverage(0)
	c.Add(10, 10)
	c.Add(30, 10)
	for _, tc := range []struct {
		off, n int64
		want   bool
	}{
		{10, 10, true}, {10, 11, false}, {9, 1, false}, {19, 1, true}, {20, 1, false},
		{15, 20, false}, {30, 10, true}, {35, 5, true}, {40, 1, false}, {0, 0, true}, {1000, 1, false},
	} {
		assert.Equal(t, tc.want, c.Contains(tc.off, tc.n), "[%d, +%d)", tc.off, tc.n)
	}
}

// TestFlattenedCoverageRandom checks the set against a byte map under
// random adds, with a limit large enough to stay exact.
func TestFlattenedCoverageRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for round := range 20 {
		const size = 20000
		var mark [size]bool
		c := NewFlattenedCoverage(1 << 20)
		for range 3000 {
			off, n := r.Int64N(size-100), 1+r.Int64N(40)
			if round%2 == 0 { // mostly ascending, like real streams
				off = min(size-100, int64(round*500)+r.Int64N(2000))
			}
			c.Add(off, n)
			for i := off; i < off+n; i++ {
				mark[i] = true
			}
		}
		var want []FlattenedRange
		for i := int64(0); i < size; i++ {
			if !mark[i] {
				continue
			}
			if k := len(want); k > 0 && want[k-1].End == i {
				want[k-1].End++
			} else {
				want = append(want, FlattenedRange{i, i + 1})
			}
		}
		require.Equal(t, want, c.Ranges(), "round %d", round)
		require.False(t, c.Lossy())
	}
}

// TestFlattenedCoverageLimit adds many disjoint ranges: the set keeps the
// largest up to its limit, never claims a byte that was not added, and stays
// within twice the limit in memory.
func TestFlattenedCoverageLimit(t *testing.T) {
	const limit = 100
	c := NewFlattenedCoverage(limit)
	for i := range int64(100000) {
		n := int64(1)
		if i%1000 == 0 {
			n = 5 // the large ones must survive
		}
		c.Add(i*10, n)
		require.LessOrEqual(t, cap(c.ranges), 4*(limit+1024))
	}
	rs := c.Ranges()
	assert.True(t, c.Lossy())
	require.Len(t, rs, limit)
	for i, r := range rs {
		assert.Zero(t, r.Off%10, "%+v was never added", r)
		assert.LessOrEqual(t, r.Len(), int64(5))
		if i > 0 {
			assert.Less(t, rs[i-1].End, r.Off)
		}
	}
	assert.Equal(t, int64(100*5), c.Bytes(), "the 100 largest ranges kept")
}
