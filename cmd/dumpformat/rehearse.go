package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
	v, err := unitconv.ParsePrefix(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b"), unitconv.Base1024)
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
	dev, err := blockdev.Open(o.device, blockdev.ReadWrite)
	if err != nil {
		return err
	}
	defer dev.Close()
	name := dev.Name()
	bs := c.fp.BlockSize
	blocks := uint64(dev.Size()) / uint64(bs)
	out := rehearsalJSON{Device: name, Arch: o.arch.String(), DeviceBlocks: blocks}

	var src kernel.MemorySource
	if o.core != "" {
		f, err := os.Open(o.core)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		es, err := kernel.NewELFCoreSource(f, st.Size(), bs)
		if err != nil {
			return fmt.Errorf("%s: %w", o.core, err)
		}
		src, out.Source = es, "memory of "+o.core
	} else {
		ram := uint64(0)
		if o.ram != "" {
			if ram, err = parseRAM(o.ram, bs); err != nil {
				return err
			}
		} else if ram, err = c.defaultRAM(blocks); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: o.arch, PageSize: bs, MemBytes: ram, Seed: uint64(o.seed)})
		if need := uncompressedBlocks(m, bs, o.compress || o.dumpLevel != 0); need > blocks {
			c.log.Warn(fmt.Sprintf("%s: a full uncompressed dump of %s of RAM needs %d blocks, the device has %d: the dump may be partial", name, iec(ram), need, blocks))
		}
		src, out.Source, out.RAMBytes = m, fmt.Sprintf("synthetic %s machine with %s of RAM (seed %d)", o.arch, iec(ram), o.seed), ram
	}
	out.MaxPFN = src.MaxPFN()

	cfg := kernel.DefaultConfig(o.arch)
	cfg.BlockSize, cfg.BlockOrder, cfg.SampleRate = bs, c.fp.BlockOrder, c.fp.SampleRate
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
	for p := range src.MaxPFN() {
		if src.IsRAM(p) {
			ramPages++
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
	res, werr := kernel.WriteDump(dev, blocks, src, cfg)
	p.stop()
	if res != nil {
		for _, line := range res.Console {
			c.log.Debug("console: " + line)
		}
	}
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
	if o.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(&out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rehearsal dump on %s: %s (%s), %s\n", name, out.StatusNames, out.Outcome, out.Source)
	fmt.Fprintf(&b, "  blocks: %d written (written_blocks) of %d, total_blocks %d\n", out.WrittenBlocks, blocks, out.TotalBlocks)
	fmt.Fprintf(&b, "  pages:  %d saved, %d skipped by dump_level %d, %d not reached", out.PagesSaved, out.PagesSkipped, o.dumpLevel, out.PagesDisregarded)
	if o.compress {
		fmt.Fprintf(&b, ", %d stored compressed", out.PagesCompressed)
	}
	b.WriteString("\n")
	_, err = io.WriteString(c.stdout, b.String())
	return err
}
