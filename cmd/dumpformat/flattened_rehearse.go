package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
	"github.com/dumpkit/dumpkit/vmcore"
)

// -R --flattened: a rehearsal of kdump's raw target (doc/FLATTENED.md §5).
// The capture kernel pipes `makedumpfile -F` into `dd of=DEVICE`: a
// flattened KDUMP stream from byte 0, over whatever the device held. Here
// the crash is dumped by the kernel-exact writer into a scratch partition
// (compressed), converted to a KDUMP vmcore, and that vmcore goes onto
// DEVICE as a flattened stream, header first.

// compressions are the --compress values of a flattened rehearsal: the
// page compressions of the KDUMP writer (makedumpfile -c, -l, -p, -z).
var compressions = []string{"zlib", "lzo", "snappy", "zstd"}

// compressFlag is --compress: alone it is the module parameter compress=1;
// with a value (--compress=zlib, or --compress zlib, see joinCompressArg)
// it also names the page compression of a flattened rehearsal.
type compressFlag struct{ o *options }

func (f compressFlag) String() string {
	if f.o == nil || !f.o.compress {
		return "false"
	}
	return "true"
}

func (f compressFlag) IsBoolFlag() bool { return true }

func (f compressFlag) Set(s string) error {
	switch strings.ToLower(s) {
	case "true", "1":
		f.o.compress = true
	case "false", "0":
		f.o.compress, f.o.compressAlgo = false, ""
	default:
		for _, c := range compressions {
			if strings.EqualFold(s, c) {
				f.o.compress, f.o.compressAlgo = true, c
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(compressions, ", "))
	}
	return nil
}

// joinCompressArg turns "--compress NAME" into "--compress=NAME" when NAME
// is a compression, so that the boolean form stays as it was.
func joinCompressArg(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "--compress" || a == "-compress") && i+1 < len(args) {
			for _, c := range compressions {
				if strings.EqualFold(args[i+1], c) {
					a, i = a+"="+args[i+1], i+1
					break
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// checkFlattenedArgs checks the flags of a flattened rehearsal.
func checkFlattenedArgs(o *options) error {
	switch {
	case o.flattened && !o.rehearse:
		return usageErr("--flattened needs -R")
	case o.compressAlgo != "" && !o.flattened:
		return usageErr("--compress %s needs --flattened (a diskdump partition is zlib or raw)", o.compressAlgo)
	}
	return nil
}

// rehearseFlattened is -R --flattened.
func (c *command) rehearseFlattened() error {
	o := c.o
	dev, err := blockdev.OpenLocked(o.device, blockdev.ReadWrite, false, o.wait)
	if err != nil {
		return err
	}
	defer dev.Close()
	name := dev.Name()
	out := rehearsalJSON{Device: name, Arch: o.arch.String(), DeviceBlocks: uint64(dev.Size()) / uint64(c.fp.BlockSize)}
	src, closeSrc, err := c.memorySource(name, out.DeviceBlocks, &out)
	if err != nil {
		return err
	}
	defer closeSrc()
	out.MaxPFN = src.MaxPFN()
	core, err := c.scratchKdump(src, &out)
	if err != nil {
		return err
	}
	defer core.Close()
	st, err := core.Stat()
	if err != nil {
		return err
	}
	w := &deviceWriter{dev: dev}
	records, ferr := vmcore.FlattenFile(w, core, st.Size())
	// What reached the device must be on the medium, as after a capture.
	if err := dev.Flush(); err != nil {
		return errors.Join(ferr, fmt.Errorf("%s: flush: %w", name, err))
	}
	if ferr != nil {
		return fmt.Errorf("%s: the flattened stream is torn after %d bytes (%d records), as a capture on a too small partition leaves it: %w",
			name, w.off, records, ferr)
	}
	out.Outcome, out.BlocksWritten = "flattened", (w.off+int64(c.fp.BlockSize)-1)/int64(c.fp.BlockSize)
	if o.json {
		return c.printRehearsal(&out, out.DeviceBlocks)
	}
	_, err = fmt.Fprintf(c.stdout, "rehearsal flattened dump on %s: %d records, %s of stream over the old contents, KDUMP vmcore of %s (%s), %s\n",
		name, records, iec(w.off), iec(st.Size()), compressionName(c.o.compressAlgo), out.Source)
	return err
}

// scratchKdump dumps src with the kernel-exact writer (compressed) into a
// scratch partition and returns the KDUMP vmcore made from it, in an
// unlinked temporary file.
func (c *command) scratchKdump(src kernel.MemorySource, out *rehearsalJSON) (*os.File, error) {
	bs := c.fp.BlockSize
	var ram uint64
	for p := range src.MaxPFN() {
		if src.IsRAM(p) {
			ram++
		}
	}
	g := diskdump.NewGeometry(bs, src.MaxPFN(), ram, true)
	blocks := g.TotalBlocks() + g.RAMBitmapBlocks + 16
	part, err := tempFile(int64(blocks) * int64(bs))
	if err != nil {
		return nil, err
	}
	pdev, err := blockdev.Open(part.Name(), blockdev.ReadWrite)
	os.Remove(part.Name())
	part.Close()
	if err != nil {
		return nil, err
	}
	defer pdev.Close()
	// The scratch partition carries no signatures: the sampling check is off.
	saved := *c.o
	c.o.compress, c.fp.SampleRate = true, -1
	res, err := c.writeRehearsal(pdev, "scratch", blocks, src, out)
	*c.o = saved
	if err != nil {
		return nil, fmt.Errorf("rehearsal dump: %w", err)
	}
	out.Status, out.StatusNames, out.PagesSaved = uint32(res.Status), res.Status.String(), res.PagesSaved
	p, err := diskdump.OpenPartition(pdev, pdev.Size())
	if err != nil {
		return nil, err
	}
	core, err := tempFile(0)
	if err != nil {
		return nil, err
	}
	os.Remove(core.Name())
	comp, _ := vmcore.ParseCompression(c.o.compressAlgo) // "" and the names of compressions are valid
	if _, err := vmcore.Write(core, p, vmcore.Options{Format: vmcore.FormatKdump, ShareZeroPage: true, Compression: comp}); err != nil {
		core.Close()
		return nil, fmt.Errorf("KDUMP vmcore: %w", err)
	}
	return core, nil
}

// tempFile is a temporary file of size bytes (sparse); the caller removes
// it once opened.
func tempFile(size int64) (*os.File, error) {
	f, err := os.CreateTemp("", "dumpformat-flattened-*")
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// deviceWriter writes a stream onto the device from byte 0, as dd does,
// and fails with ENOSPC at its end.
type deviceWriter struct {
	dev *blockdev.Device
	off int64
}

func (w *deviceWriter) Write(p []byte) (int, error) {
	n := min(int64(len(p)), w.dev.Size()-w.off)
	if n > 0 {
		m, err := w.dev.WriteAt(p[:n], w.off)
		w.off += int64(m)
		if err != nil {
			return m, err
		}
	}
	if n < int64(len(p)) {
		return int(max(n, 0)), &os.PathError{Op: "write", Path: w.dev.Name(), Err: syscall.ENOSPC}
	}
	return len(p), nil
}

var _ io.Writer = (*deviceWriter)(nil)

// compressionName is the page compression of a flattened rehearsal.
func compressionName(algo string) string {
	if algo == "" {
		return "zlib"
	}
	return algo
}
