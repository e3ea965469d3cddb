package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/dsnet/golib/unitconv"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/diskdump"
)

// maxDefaultRAM bounds the synthetic machine chosen when --ram is not given.
const maxDefaultRAM = 1 << 30

// rehearsalJSON is the --json output of -R.
type rehearsalJSON struct {
	Device           string   `json:"device"`
	Source           string   `json:"source"`
	Arch             string   `json:"arch"`
	RAMBytes         uint64   `json:"ram_bytes,omitempty"`
	MaxPFN           uint64   `json:"max_pfn"`
	Outcome          string   `json:"outcome"`
	Status           uint32   `json:"status"`
	StatusNames      string   `json:"status_names"`
	DeviceBlocks     uint64   `json:"device_blocks"`
	TotalBlocks      uint64   `json:"total_blocks"`
	WrittenBlocks    uint64   `json:"written_blocks"`
	BlocksWritten    int64    `json:"blocks_written"`
	PagesSaved       uint64   `json:"pages_saved"`
	PagesSkipped     uint64   `json:"pages_skipped"`
	PagesDisregarded uint64   `json:"pages_not_reached"`
	PagesCompressed  uint64   `json:"pages_compressed"`
	Console          []string `json:"console"`
}

// parseRAM parses --ram: IEC sizes, where 256M and 256Mi both mean 256 MiB.
func parseRAM(s string, pageSize int) (uint64, error) {
	num := strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b")
	if _, err := strconv.ParseFloat(num, 64); err == nil {
		// A bare number is ambiguous (bytes? MiB?): say the unit.
		return 0, usageErr("--ram %q: give a unit, e.g. %sM or %sG", s, num, num)
	}
	v, err := unitconv.ParsePrefix(num, unitconv.Base1024)
	if err != nil || v < float64(pageSize) || v > 1<<44 {
		return 0, usageErr("--ram %q: want a size such as 256M, 1G or 256Mi, at least one page and at most 16 TiB", s)
	}
	return uint64(v) / uint64(pageSize) * uint64(pageSize), nil
}

// uncompressedBlocks is what a full uncompressed dump of m takes:
// total_blocks, plus the second bitmap when one is written.
func uncompressedBlocks(m *kernel.SyntheticMachine, bs int, twoBitmaps bool) uint64 {
	return diskdump.NewGeometry(bs, m.MaxPFN(), m.RAMPages(), twoBitmaps).FirstDataBlock() + m.RAMPages()
}

// defaultRAM is the largest synthetic machine, in whole MiB and at most
// 1 GiB, whose uncompressed dump fits in deviceBlocks.
func (c *command) defaultRAM(deviceBlocks uint64) (uint64, error) {
	twoBitmaps := c.o.compress || c.o.dumpLevel != 0
	for mib := uint64(maxDefaultRAM >> 20); mib > 0; mib-- {
		m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: c.o.arch, PageSize: c.fp.BlockSize, MemBytes: mib << 20})
		if uncompressedBlocks(m, c.fp.BlockSize, twoBitmaps) <= deviceBlocks {
			return mib << 20, nil
		}
	}
	return 0, fmt.Errorf("%d blocks cannot hold the dump of a 1 MiB machine: %w", deviceBlocks, diskdump.ErrTooSmall)
}

// rehearse is -R: it writes to DEVICE exactly what the RHEL4 diskdump
// module would write after a panic, so that savecore, crash and the rc
// scripts can be tried without crashing a machine. Like the kernel, it
// refuses a device without valid signatures (or a swap header).
func (c *command) rehearse() error {
	o := c.o
	if o.flattened {
		return c.rehearseFlattened() // kdump raw target: flattened_rehearse.go
	}
	dev, err := blockdev.OpenLocked(o.device, blockdev.ReadWrite, false, o.wait)
	if err != nil {
		return err
	}
	defer dev.Close()
	name := dev.Name()
	blocks := uint64(dev.Size()) / uint64(c.fp.BlockSize)
	out := rehearsalJSON{Device: name, Arch: o.arch.String(), DeviceBlocks: blocks}
	src, closeSrc, err := c.memorySource(name, blocks, &out)
	if err != nil {
		return err
	}
	defer closeSrc()
	if err := c.refuseDump(dev, name); err != nil {
		return err
	}
	out.MaxPFN = src.MaxPFN()
	res, werr := c.writeRehearsal(dev, name, blocks, src, &out)
	// Whatever reached the device must be on the medium, as after a real
	// panic, also when the kernel gave up half-way.
	if err := dev.Flush(); err != nil {
		return errors.Join(werr, fmt.Errorf("%s: flush: %w", name, err))
	}
	if werr != nil {
		return fmt.Errorf("%s: the kernel would not dump here: %w", name, werr)
	}
	out.Outcome, out.Status, out.StatusNames = res.Outcome.String(), uint32(res.Status), res.Status.String()
	out.TotalBlocks, out.WrittenBlocks, out.BlocksWritten = res.TotalBlocks, res.WrittenBlocks, res.BlocksWritten
	out.PagesSaved, out.PagesSkipped, out.PagesDisregarded, out.PagesCompressed = res.PagesSaved, res.PagesSkipped, res.PagesDisregarded, res.PagesCompressed
	out.Console = res.Console
	if out.Console == nil {
		out.Console = []string{}
	}
	return c.printRehearsal(&out, blocks)
}

// memorySource is the memory to dump: the ELF core of -m, or a synthetic
// machine of --ram (default: the largest that fits, up to 1 GiB).
func (c *command) memorySource(name string, blocks uint64, out *rehearsalJSON) (kernel.MemorySource, func(), error) {
	o, bs := c.o, c.fp.BlockSize
	if o.core != "" {
		f, err := os.Open(o.core)
		if err != nil {
			return nil, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		es, err := kernel.NewELFCoreSource(f, st.Size(), bs)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", o.core, err)
		}
		out.Source = "memory of " + o.core
		return es, func() { f.Close() }, nil
	}
	var ram uint64
	var err error
	if o.ram != "" {
		if ram, err = parseRAM(o.ram, bs); err != nil {
			return nil, nil, err
		}
	} else if ram, err = c.defaultRAM(blocks); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: o.arch, PageSize: bs, MemBytes: ram, Seed: uint64(o.seed)})
	// A flattened rehearsal dumps into a scratch partition of its own size
	// (flattened_rehearse.go): the device only has to take the stream.
	if !c.o.flattened {
		if err := c.fits(name, m, ram, blocks); err != nil {
			return nil, nil, err
		}
	}
	out.Source, out.RAMBytes = fmt.Sprintf("synthetic %s machine with %s of RAM (seed %d)", o.arch, iec(ram), o.seed), ram
	src, err := c.withKernelLog(m, ram) // kernellog.go
	return src, func() {}, err
}

// writeRehearsal runs the kernel-exact writer with progress.
func (c *command) writeRehearsal(dev *blockdev.Device, name string, blocks uint64, src kernel.MemorySource, out *rehearsalJSON) (*kernel.Result, error) {
	o := c.o
	cfg := kernel.DefaultConfig(o.arch)
	cfg.BlockSize, cfg.BlockOrder, cfg.SampleRate = c.fp.BlockSize, c.fp.BlockOrder, c.fp.SampleRate
	cfg.Compress, cfg.DumpLevel = o.compress, o.dumpLevel
	cfg.Utsname = kernel.DefaultUtsname(o.arch)
	if o.release != "" {
		cfg.Utsname.Release = o.release
	}
	if o.nodename != "" {
		cfg.Utsname.Nodename = o.nodename
	}
	cfg.Time = time.Now()
	cfg.DeviceName = name
	var ramPages uint64
	if sm, ok := src.(*kernel.SyntheticMachine); ok {
		ramPages = sm.RAMPages()
	} else {
		for p := range src.MaxPFN() {
			if src.IsRAM(p) {
				ramPages++
			}
		}
	}
	p := c.startProgress(name, ramPages)
	defer p.stop()
	var saved uint64
	cfg.OnSaved = func(uint64, int64, int) {
		saved++
		if saved%1024 == 0 || saved == ramPages {
			p.update(saved, ramPages)
		}
	}
	c.log.Debug("rehearsal", "device", name, "source", out.Source, "compress", o.compress, "dump_level", o.dumpLevel)
	res, err := kernel.WriteDump(dev, blocks, src, cfg)
	p.stop()
	if res != nil {
		for _, line := range res.Console {
			c.log.Debug("console: " + line)
		}
	}
	return res, err
}

// printRehearsal prints the outcome, as JSON with --json.
func (c *command) printRehearsal(out *rehearsalJSON, blocks uint64) error {
	if c.o.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rehearsal dump on %s: %s (%s), %s\n", out.Device, out.StatusNames, out.Outcome, out.Source)
	fmt.Fprintf(&b, "  blocks: %d written (written_blocks) of %d, total_blocks %d\n", out.WrittenBlocks, blocks, out.TotalBlocks)
	fmt.Fprintf(&b, "  pages:  %d saved, %d skipped by dump_level %d, %d not reached", out.PagesSaved, out.PagesSkipped, c.o.dumpLevel, out.PagesDisregarded)
	if c.o.compress {
		fmt.Fprintf(&b, ", %d stored compressed", out.PagesCompressed)
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.stdout, b.String())
	return err
}

// refuseDump stops a rehearsal over an unsaved dump with the reason: the
// kernel would refuse the device too (block 1 fails the signature check,
// doc/FORMAT.md §3.2), and the dump is worth saving first.
func (c *command) refuseDump(dev *blockdev.Device, name string) error {
	res, err := diskdump.CheckPartition(dev, dev.Size(), c.fp)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if res.Status == diskdump.CheckHoldsDump {
		return fmt.Errorf("%s holds a dump: run savecore first (or discard it with savecore -X); the kernel would not dump over it", name)
	}
	return nil
}

// fits refuses, before anything is written, a synthetic machine the
// kernel could not dump on a device of blocks blocks: total_blocks beyond
// its 32-bit counters, a device too small for the headers and bitmaps, or
// (strict mode: no --compress, --dump-level 0, doc/FORMAT.md §3.2) a device smaller
// than a full dump, which the kernel refuses outright. Otherwise a dump
// that will not fit is only warned about.
func (c *command) fits(name string, m *kernel.SyntheticMachine, ram, blocks uint64) error {
	o, bs := c.o, c.fp.BlockSize
	twoBitmaps := o.compress || o.dumpLevel != 0
	g := diskdump.NewGeometry(bs, m.MaxPFN(), m.RAMPages(), twoBitmaps)
	need := g.FirstDataBlock() + m.RAMPages()
	switch {
	case g.TotalBlocks() > math.MaxUint32:
		return usageErr("--ram %s: total_blocks %d exceeds the kernel's 32-bit block counters (at most %s of RAM with %d-byte pages)",
			o.ram, g.TotalBlocks(), iec(uint64(math.MaxUint32)*uint64(bs)), bs)
	case g.FirstDataBlock() >= blocks:
		return fmt.Errorf("%s: %d blocks cannot hold the headers and bitmaps (%d blocks) of %s of RAM: %w", name, blocks, g.FirstDataBlock(), iec(ram), diskdump.ErrTooSmall)
	case need > blocks && !twoBitmaps:
		return fmt.Errorf("%s: a full dump of %s of RAM needs %d blocks, the device has %d: without --compress or --dump-level the kernel dumps whole memory or nothing (strict mode) and refuses this device; use --compress, --dump-level or a smaller --ram",
			name, iec(ram), need, blocks)
	case need > blocks:
		c.log.Warn(fmt.Sprintf("%s: a full uncompressed dump of %s of RAM needs %d blocks, the device has %d: the dump may be partial", name, iec(ram), need, blocks))
	}
	return nil
}
