package diskdump_test

import (
	"fmt"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/dsnet/golib/memfile"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Example lists a dump partition the way savecore sees it: the header
// fields, the geometry and how many pages can be recovered. The partition
// is made in memory by the kernel-exact writer: a 4 MiB x86_64 machine
// dumped compressed with dump_level 19.
func Example() {
	a := diskdump.ArchX86_64
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: 4 << 20, Seed: 1, NoRandomBad: true})
	const blocks = 1100
	part := memfile.New(make([]byte, blocks*4096))
	fp := diskdump.FormatParams{BlockSize: 4096, Order: a.ByteOrder(), BlockOrder: 2, SampleRate: 8}
	if err := diskdump.FormatInitial(part, blocks, fp, nil); err != nil {
		panic(err)
	}
	cfg := kernel.DefaultConfig(a)
	cfg.Compress, cfg.DumpLevel = true, 19
	cfg.Time = time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC)
	if _, err := kernel.WriteDump(part, blocks, m, cfg); err != nil {
		panic(err)
	}

	p, err := diskdump.OpenPartition(part, int64(len(part.Bytes())))
	if err != nil {
		panic(err) // errors.Is(err, diskdump.ErrNoDump) when there is no dump
	}
	h := p.Header()
	fmt.Println("arch:", p.Arch())
	fmt.Println("utsname:", h.Utsname.Sysname, h.Utsname.Release, h.Utsname.Machine)
	fmt.Println("crashed:", h.Time().UTC().Format(time.DateTime))
	fmt.Println("status:", h.Status)
	fmt.Println("block size:", p.BlockSize(), "swap:", p.IsSwap())
	fmt.Println("max_mapnr:", h.MaxMapnr, "RAM pages:", p.RAMBitmap().Count())
	fmt.Println("incomplete or partial:", p.Incomplete())
	var found, lost int
	for _, err := range p.Pages() {
		if err != nil {
			lost++ // a *diskdump.PageError: PFN and offset of what was lost
			continue
		}
		found++
	}
	st := p.Stats()
	fmt.Println("pages found:", found, "=", st.Found, "lost:", st.Lost, "excluded by dump_level:", st.Excluded)
	// Output:
	// arch: x86_64
	// utsname: Linux 2.6.9-89.ELsmp x86_64
	// crashed: 2009-06-29 16:00:00
	// status: COMPLETED|COMPRESSED
	// block size: 4096 swap: false
	// max_mapnr: 1024 RAM pages: 928
	// incomplete or partial: true
	// pages found: 500 = 500 lost: 0 excluded by dump_level: 428
}
