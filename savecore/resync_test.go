package savecore

// End to end: a compressed dump partition with a damaged record header or
// an unreadable block is saved with the pages the reader recovers after
// resynchronising its record stream (diskdump/resync_test.go has the
// details), in DISKDUMP and ELF vmcores, as the independent libkdumpfile
// reader sees them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

func TestSaveResyncedDump(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64, mem: 8 << 20, compress: true,
		mix: kernel.PageMix{Zero: 20, Sparse: 20, Text: 20, Pattern: 20, Random: 20}}
	pristine, m, wr := r.image(t)
	require.Equal(t, kernel.OutcomeCompleted, wr.Outcome)
	bs := int64(r.blockSize())
	// The records of the pristine dump, in order.
	type rec struct {
		pfn      uint64
		off, end int64
	}
	var recs []rec
	p, err := diskdump.OpenPartition(bytes.NewReader(pristine), int64(len(pristine)))
	require.NoError(t, err)
	for pg, err := range p.Pages() {
		require.NoError(t, err)
		recs = append(recs, rec{pg.PFN, pg.Off - diskdump.PageRecordSize, pg.Off + int64(len(pg.Data))})
	}
	require.Greater(t, len(recs), 1000)
	o := r.arch.ByteOrder()

	tests := []struct {
		name string
		// damage returns the device and the indices of the records lost.
		damage func(img []byte) (Device, map[int]bool)
	}{
		{"record size 0 in the middle", func(img []byte) (Device, map[int]bool) {
			j := len(recs) / 2
			o.PutUint32(img[recs[j].off+8:], 0)
			return blockdevtest.NewFaultDevice(img), map[int]bool{j: true}
		}},
		{"unreadable block at a third", func(img []byte) (Device, map[int]bool) {
			// Every record with a byte in the block is lost (its header or
			// its data is unreadable); the stream is picked up at the first
			// record after it.
			a := recs[len(recs)/3].off / bs * bs
			lost := map[int]bool{}
			for i, rc := range recs {
				if rc.end > a && rc.off < a+bs {
					lost[i] = true
				}
			}
			dev := blockdevtest.NewFaultDevice(img)
			dev.FailRead = blockdevtest.BadRange(a, a+bs)
			return dev, lost
		}},
	}
	for _, tc := range tests {
		for _, format := range []string{"diskdump", "elf"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				dev, lost := tc.damage(bytes.Clone(pristine))
				opt, _ := testOptions(t)
				opt.Format = format
				rep := Save(context.Background(), []Input{{Name: "part0", Dev: dev}}, opt)
				res := rep.Results[0]
				require.NoError(t, res.Err)
				require.Equal(t, OutcomeSaved, res.Outcome)
				assert.Equal(t, uint64(len(lost)), res.Lost, "pages lost")
				assert.True(t, res.Incomplete)
				recovered := diskdump.MakeBitmap(m.MaxPFN())
				for i, rc := range recs {
					if !lost[i] {
						recovered.Set(rc.pfn)
					}
				}
				if format == "diskdump" {
					assert.Equal(t, recovered.Count(), res.Pages, "pages stored")
				}
				want := hashMachinePages(t, m, recovered)
				got := oracle(t, res.Path)
				for pfn, h := range want {
					require.Equal(t, h, got[pfn], "PFN %d", pfn)
				}
				zero := sha256.Sum256(make([]byte, bs))
				for i := range lost {
					h, ok := got[recs[i].pfn]
					if format == "diskdump" {
						assert.False(t, ok, "lost PFN %d is in the vmcore", recs[i].pfn)
					} else if ok {
						assert.Equal(t, hex.EncodeToString(zero[:]), h, "lost PFN %d must read as zeros", recs[i].pfn)
					}
				}
				if format == "diskdump" {
					assert.Len(t, got, len(want), "pages stored")
				}
				t.Logf("%d records, %d lost, %d saved", len(recs), len(lost), res.Pages)
			})
		}
	}
}
