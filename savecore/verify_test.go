package savecore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/dumpkit/dumpkit/vmcore"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
)

// corruptRecord flips the Adler-32 trailer of the zlib record of the first
// compressed page at or above minPFN in a partition image, and returns its
// PFN and the partition offset of its data. The record keeps its size, so
// the reader sees nothing wrong; only inflating it does.
func corruptRecord(t testing.TB, img []byte, minPFN uint64) (uint64, int64) {
	t.Helper()
	p, err := diskdump.OpenPartition(bytes.NewReader(img), int64(len(img)))
	require.NoError(t, err)
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		if pg.PFN >= minPFN && pg.Compressed {
			end := pg.Off + int64(len(pg.Data))
			sum := binary.BigEndian.Uint32(img[end-4 : end])
			binary.BigEndian.PutUint32(img[end-4:end], sum^0xffff)
			return pg.PFN, pg.Off
		}
	}
	t.Fatal("no compressed record")
	return 0, 0
}

func TestSaveVerify(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, compress: true, seed: 40}
	for _, format := range []string{"diskdump", "kdump"} {
		for _, verify := range []bool{false, true} {
			t.Run(format+"/verify="+strconv.FormatBool(verify), func(t *testing.T) { testSaveVerify(t, r, format, verify) })
		}
	}
}

func testSaveVerify(t *testing.T, r rehearsal, format string, verify bool) {
	dev, m, wr := r.memImage(t)
	pfn, off := corruptRecord(t, dev.Bytes(), 600)
	opt, log := testOptions(t)
	opt.VerifyRecords = verify
	if format != "diskdump" {
		opt.Format = format
	}
	rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
	require.False(t, rep.Failed(true), "lost pages are no failure (exit 0)")
	res := rep.Results[0]
	require.Equal(t, OutcomeSaved, res.Outcome)
	assert.Equal(t, format, res.Format)

	want := hashMachinePages(t, m, wr.Saved)
	if !verify {
		assert.Zero(t, res.Lost)
		assert.Zero(t, res.BadRecords)
		assert.NotContains(t, log.String(), "damaged zlib record")
		assert.Equal(t, uint64(len(want)), res.Pages, "the damaged record is copied")
		return
	}
	assert.Equal(t, uint64(1), res.Lost)
	assert.Equal(t, uint64(1), res.BadRecords)
	assert.True(t, res.Incomplete)
	assert.Equal(t, uint64(len(want)-1), res.Pages)
	assert.Contains(t, log.String(), "dump damaged: the header says COMPLETED", "a COMPLETED dump that lost a page is damaged, not incomplete")
	assert.NotContains(t, log.String(), "dump was incomplete")
	assert.Contains(t, log.String(), "bad_records=1")
	assert.Contains(t, log.String(), `msg="damaged zlib record of PFN {pfn} at offset {offset}: {err}" device=mem0 pfn=`+strconv.FormatUint(pfn, 10)+" offset="+strconv.FormatInt(off, 10))

	delete(want, pfn)
	assert.Equal(t, want, vmcorePageHashes(t, res.Path, want), "every other page intact")
	f, err := os.Open(res.Path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	v, err := vmcore.Open(f, fi.Size())
	require.NoError(t, err)
	_, err = v.ReadPage(pfn, nil)
	assert.ErrorIs(t, err, vmcore.ErrPageExcluded, "the damaged page is not in the vmcore")
	if got := oracle(t, res.Path); got != nil {
		assert.Equal(t, want, got, "libkdumpfile reads the same pages")
	}
}

// TestSaveFormatAuto: an explicit "auto" is resolved before anything is
// logged or reported.
func TestSaveFormatAuto(t *testing.T) {
	for _, tc := range []struct {
		compress bool
		want     string
	}{{false, "elf"}, {true, "diskdump"}} {
		t.Run(tc.want, func(t *testing.T) {
			dev, _, _ := rehearsal{arch: diskdump.ArchX86_64, compress: tc.compress}.memImage(t)
			opt, log := testOptions(t)
			opt.Format = "auto"
			rep := Save(context.Background(), []Input{{Name: "mem0", Dev: dev}}, opt)
			res := rep.Results[0]
			require.NoError(t, res.Err)
			assert.Equal(t, tc.want, res.Format)
			assert.Contains(t, log.String(), "format="+tc.want)
			assert.NotContains(t, log.String(), "auto")
		})
	}
}

func TestBadRecords(t *testing.T) {
	bad := &diskdump.PageError{PFN: 5, Off: 100, Err: diskdump.ErrCorrupt}
	lost := &diskdump.PageError{PFN: 6, Off: 200, Err: &diskdump.LostError{Reason: diskdump.LostCorrupt, Pages: 1, Err: diskdump.ErrCorrupt}}
	assert.Empty(t, badRecords(nil, 8))
	assert.Equal(t, []*diskdump.PageError{bad}, badRecords(bad, 8))
	joined := errors.Join(lost, bad, bad, bad)
	assert.Equal(t, []*diskdump.PageError{bad, bad}, badRecords(joined, 2))
}
