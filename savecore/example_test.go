package savecore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dumpkit/dumpkit/diskdump/kernel"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/savecore"
)

// Example saves the dump on a partition image, as savecore does at boot
// for each device of /etc/sysconfig/diskdump. The image is written first by
// the kernel-exact writer (a 4 MiB x86_64 machine, uncompressed).
func Example() {
	tmp, err := os.MkdirTemp("", "savecore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	img := filepath.Join(tmp, "part.img")
	if err := rehearse(img); err != nil {
		panic(err)
	}

	root := filepath.Join(tmp, "crash")
	rep := savecore.SaveDevices(context.Background(), []string{img}, savecore.Options{
		Dir:      root,
		Delete:   true,     // erase the dump once the vmcore is durable
		Location: time.UTC, // directory names in UTC (default: local time)
	})
	for _, r := range rep.Results {
		rel, _ := filepath.Rel(tmp, r.Path)
		fmt.Println(r.Outcome, rel, r.Format, r.Pages, "pages, erased:", r.Erased)
	}
	fmt.Println("failed:", rep.Failed(true))

	// Once erased, there is nothing left to save.
	rep = savecore.SaveDevices(context.Background(), []string{img}, savecore.Options{Dir: root})
	fmt.Println(rep.Results[0].Outcome, strings.Join(rep.Paths(), ","))
	// Output:
	// saved crash/127.0.0.1-2009-06-29-16:00/vmcore elf 928 pages, erased: true
	// failed: false
	// no dump
}

// rehearse writes a crash dump into a new partition image file.
func rehearse(path string) error {
	a := diskdump.ArchX86_64
	m := kernel.NewSyntheticMachine(kernel.SyntheticConfig{Arch: a, MemBytes: 4 << 20, Seed: 1})
	const blocks = 1100
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(blocks * 4096); err != nil {
		return err
	}
	fp := diskdump.FormatParams{BlockSize: 4096, Order: a.ByteOrder(), BlockOrder: 2, SampleRate: 8}
	if err := diskdump.FormatInitial(f, blocks, fp, nil); err != nil {
		return err
	}
	cfg := kernel.DefaultConfig(a)
	cfg.Time = time.Date(2009, 6, 29, 16, 0, 0, 0, time.UTC)
	if _, err := kernel.WriteDump(f, blocks, m, cfg); err != nil {
		return err
	}
	return f.Close()
}
