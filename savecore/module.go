package savecore

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Where the running diskdump module shows its parameters (spec §7).
const (
	procDiskdumpPath = "/proc/diskdump"
	sysParamsDir     = "/sys/module/diskdump/parameters"
)

// hostModuleParams reads the loaded module's parameters from /proc/diskdump
// or /sys/module/diskdump/parameters, else returns the module defaults
// (block_order 2, sample_rate 8). It says where they came from.
func hostModuleParams(log *slog.Logger) (diskdump.ModuleParams, string) {
	if f, err := os.Open(procDiskdumpPath); err == nil {
		defer f.Close()
		p, err := diskdump.ParseProcDiskdump(f)
		if err == nil {
			return p.Params, procDiskdumpPath
		}
		log.Warn("ignoring unreadable module parameters", "file", procDiskdumpPath, "err", err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("ignoring unreadable module parameters", "err", err)
	}
	entries, err := os.ReadDir(sysParamsDir)
	if err == nil && len(entries) > 0 {
		mp := diskdump.DefaultModuleParams
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(sysParamsDir, e.Name()))
			if err == nil {
				err = mp.SetParam(e.Name(), string(b))
			}
			if err != nil {
				log.Warn("ignoring module parameter", "name", e.Name(), "err", err)
			}
		}
		return mp, sysParamsDir
	}
	return diskdump.DefaultModuleParams, "module defaults"
}
