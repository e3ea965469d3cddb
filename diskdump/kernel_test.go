package diskdump_test

import (
	"github.com/dsnet/golib/memfile"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/diskdump/kernel"
)

// init lends the kernel-exact writer to this package's internal tests (see
// export_test.go): they build real dumps without importing diskdump/kernel.
func init() {
	diskdump.SetTestDumpWriter(func(img []byte, devBlocks uint64, d diskdump.TestDump) ([]byte, bool, error) {
		src := kernel.NewSyntheticMachine(kernel.SyntheticConfig{
			Arch: d.Arch, MemBytes: d.MemBytes, Seed: d.Seed, NoHoles: d.NoHoles, NoRandomBad: d.NoRandomBad,
			BadPFNs: d.BadPFNs,
			Mix:     kernel.PageMix{Zero: d.Mix[0], Sparse: d.Mix[1], Text: d.Mix[2], Pattern: d.Mix[3], Random: d.Mix[4]},
		})
		cfg := kernel.DefaultConfig(d.Arch)
		cfg.Compress, cfg.DumpLevel, cfg.StopAfterBlocks = d.Compress, d.DumpLevel, d.StopAfter
		if !d.Time.IsZero() {
			cfg.Time = d.Time
		}
		f := memfile.New(img)
		res, err := kernel.WriteDump(f, devBlocks, src, cfg)
		if err != nil {
			return nil, false, err
		}
		return f.Bytes(), res.Outcome == kernel.OutcomeCompleted, nil
	})
}
