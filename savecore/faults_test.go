package savecore

// Faults on the dump device: read errors (EIO from a device with bad
// sectors, blockdevtest.FaultDevice) in the header, the bitmaps and the
// data area, with and without -D. A dump must never be lost: what cannot
// be read is reported with the device and its position, the next device is
// tried, and a dump saved with read errors is not erased.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

// fltGeometry is where the structures of a rehearsal dump lie.
func fltGeometry(t *testing.T, dev memDev) diskdump.Geometry {
	t.Helper()
	p, err := diskdump.OpenPartition(dev, dev.Size())
	require.NoError(t, err)
	return p.Geometry()
}

// fltDevice wraps a copy of dev whose reads fail with EIO in blocks
// [from, to).
func fltDevice(dev memDev, name string, bs int, from, to uint64) *blockdevtest.FaultDevice {
	f := blockdevtest.NewFaultDevice(append([]byte(nil), dev.Bytes()...))
	f.Path = name
	f.FailRead = blockdevtest.BadRange(int64(from)*int64(bs), int64(to)*int64(bs))
	return f
}

// TestFaultMetadataEIO: an unreadable header or bitmap fails that device
// with an error naming the device, the block and the errno, and the next
// device of the list is saved.
func TestFaultMetadataEIO(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchX86_64, compress: true}} {
		good, _, _ := r.memImage(t)
		g := fltGeometry(t, good)
		// A second crash, an hour later, on the next device.
		later := r
		later.time = crashTime.Add(3600e9)
		tests := []struct {
			name     string
			from, to uint64
			field    string
			blk      uint64
		}{
			{"header", 1, 2, "signature", 1},
			{"sub-header", 2, 3, "sub_header", 2},
			{"bitmap 1", g.RAMBitmapBlock(), g.RAMBitmapBlock() + 1, "bitmap", g.RAMBitmapBlock()},
		}
		if g.TwoBitmaps() {
			tests = append(tests, struct {
				name     string
				from, to uint64
				field    string
				blk      uint64
			}{"bitmap 2", g.DumpBitmapBlock(), g.DumpBitmapBlock() + 1, "bitmap", g.DumpBitmapBlock()})
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("compress=%v/%s", r.compress, tc.name), func(t *testing.T) {
				bad := fltDevice(good, "/dev/sdz1", 4096, tc.from, tc.to)
				next, m2, wr2 := later.memImage(t)
				opt, logs := testOptions(t)
				opt.Delete = true
				rep := Save(context.Background(), []Input{{Name: "/dev/sdz1", Dev: bad}, {Name: "/dev/sdz2", Dev: next}}, opt)
				require.Len(t, rep.Results, 2)
				res := rep.Results[0]
				require.Error(t, res.Err)
				assert.Equal(t, OutcomeFailed, res.Outcome)
				assert.ErrorIs(t, res.Err, syscall.EIO)
				var fe *diskdump.FormatError
				require.ErrorAs(t, res.Err, &fe)
				assert.Equal(t, tc.field, fe.Field)
				assert.Equal(t, int64(tc.blk), fe.Blk)
				assert.Contains(t, res.Err.Error(), "/dev/sdz1", "the errno's message names the device")
				assert.Contains(t, res.Err.Error(), fmt.Sprintf("block %d", tc.blk))
				assert.Contains(t, logs.String(), "/dev/sdz1")
				assert.False(t, res.Erased)
				assert.True(t, rep.Failed(true), "savecore exits 1")
				// The device was not touched: once readable it holds the dump.
				bad.FailRead = nil
				_, err := diskdump.OpenPartition(bad, bad.Size())
				assert.NoError(t, err, "dump kept")

				res2 := rep.Results[1]
				require.NoError(t, res2.Err, "the next device is saved")
				assert.Equal(t, OutcomeSaved, res2.Outcome)
				checkVmcore(t, res2.Path, m2, wr2, false)
			})
		}
	}
}

// TestFaultDataEIO: bad sectors in the data area: every readable page is
// saved, the vmcore is marked incomplete, the log names the device, the
// pages and offsets lost, and with -D the dump is kept on the partition
// (the sectors may read on a retry, or another tool may recover them).
func TestFaultDataEIO(t *testing.T) {
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64}, {arch: diskdump.ArchX86_64, compress: true}} {
		for _, del := range []bool{false, true} {
			t.Run(fmt.Sprintf("compress=%v/delete=%v", r.compress, del), func(t *testing.T) {
				good, _, wr := r.memImage(t)
				g := fltGeometry(t, good)
				from := g.FirstDataBlock() + 40
				bad := fltDevice(good, "/dev/sdz1", 4096, from, from+3)
				opt, logs := testOptions(t)
				opt.Delete = del
				rep := Save(context.Background(), []Input{{Name: "/dev/sdz1", Dev: bad}}, opt)
				res := rep.Results[0]
				assert.Equal(t, OutcomeSaved, res.Outcome)
				assert.True(t, res.Incomplete)
				assert.NotZero(t, res.Lost)
				assert.Greater(t, res.Pages, uint64(0))
				l := logs.String()
				assert.Contains(t, l, "/dev/sdz1")
				assert.Contains(t, l, "pages_lost")
				assert.Contains(t, l, "input/output error")
				if !r.compress {
					// Raw: exactly the pages of the three bad blocks, named
					// by their offsets.
					assert.Equal(t, uint64(3), res.Lost)
					assert.Equal(t, wr.Recoverable.Count()-3, res.Pages)
					for b := from; b < from+3; b++ {
						assert.Contains(t, l, fmt.Sprintf("offset 0x%x", int64(b)*4096), "the log names where data was lost")
					}
				} else {
					// Compressed: the record crossing into the bad blocks is
					// named; the records after it cannot be found without
					// the bytes in between (see the report).
					assert.Regexp(t, `PFN \d+ at offset 0x[0-9a-f]+: 1 page\(s\) lost: read error`, l)
				}
				bad.FailRead = nil
				_, err := diskdump.OpenPartition(bad, bad.Size())
				assert.NoError(t, err, "a dump saved with read errors is not erased, even with -D")
				assert.False(t, res.Erased)
				if del {
					assert.Error(t, res.Err, "-D could not be honoured: savecore exits 1")
				}
			})
		}
	}
}

// TestFaultWriteErrorDuringErase: the erase of -D fails (the device stops
// taking writes): the vmcore stays, the error names the device.
func TestFaultWriteErrorDuringErase(t *testing.T) {
	r := rehearsal{arch: diskdump.ArchX86_64}
	good, m, wr := r.memImage(t)
	bad := blockdevtest.NewFaultDevice(append([]byte(nil), good.Bytes()...))
	bad.Path = "/dev/sdz1"
	bad.FailWrite = blockdevtest.BadRange(0, bad.NBytes)
	opt, _ := testOptions(t)
	opt.Delete = true
	rep := Save(context.Background(), []Input{{Name: "/dev/sdz1", Dev: bad}}, opt)
	res := rep.Results[0]
	assert.Equal(t, OutcomeSaved, res.Outcome)
	require.Error(t, res.Err)
	assert.ErrorIs(t, res.Err, syscall.EIO)
	assert.Contains(t, res.Err.Error(), "/dev/sdz1")
	assert.False(t, res.Erased)
	checkVmcore(t, res.Path, m, wr, false)
	fi, err := os.Stat(filepath.Dir(res.Path))
	require.NoError(t, err)
	assert.Equal(t, DirMode, fi.Mode().Perm())
	assert.True(t, rep.Failed(true))
	_, err = diskdump.OpenPartition(bad, bad.Size())
	assert.False(t, errors.Is(err, diskdump.ErrNoDump), "dump still there")
}

// TestFaultDeviceVanishes: the device goes away in the middle of the save
// (a USB disk unplugged, a multipath device failing over): every read
// after that fails with ENXIO. What was read is saved and marked
// incomplete, the error says which device and how much was lost, and with
// -D the dump stays on the partition (the backing medium is untouched).
// Loop devices cannot be detached while open and this kernel has no
// device-mapper, so the fault is injected above blockdev.
func TestFaultDeviceVanishes(t *testing.T) {
	// Incompressible pages: the compressed data area is big enough for
	// progress reports in the middle.
	mix := kernel.PageMix{Random: 1}
	for _, r := range []rehearsal{{arch: diskdump.ArchX86_64, mem: 8 << 20}, {arch: diskdump.ArchX86_64, mem: 12 << 20, compress: true, mix: mix}} {
		t.Run(map[bool]string{false: "raw", true: "compressed"}[r.compress], func(t *testing.T) {
			good, _, wr := r.memImage(t)
			pristine := append([]byte(nil), good.Bytes()...)
			dev := blockdevtest.NewFaultDevice(good.Bytes())
			dev.Path = "/dev/sdz1"
			var gone bool
			dev.FailRead = func(off int64, n int) error {
				if gone {
					return syscall.ENXIO
				}
				return nil
			}
			dev.FailWrite = dev.FailRead
			opt, logs := testOptions(t)
			opt.Delete = true
			opt.Progress = func(_ string, done, total int64) {
				if done > 0 && done < total {
					gone = true
				}
			}
			rep := Save(context.Background(), []Input{{Name: "/dev/sdz1", Dev: dev}}, opt)
			res := rep.Results[0]
			require.True(t, gone, "progress was reported mid-way")
			require.Error(t, res.Err, "savecore exits 1")
			assert.Contains(t, res.Err.Error(), "/dev/sdz1")
			assert.True(t, rep.Failed(true))
			assert.False(t, res.Erased)
			assert.Contains(t, logs.String(), "no such device or address")
			if res.Outcome == OutcomeSaved {
				assert.True(t, res.Incomplete)
				assert.NotZero(t, res.Lost)
				assert.Less(t, res.Pages, wr.Recoverable.Count())
			}
			assert.Equal(t, pristine, good.Bytes(), "the device's content is untouched")
		})
	}
}
