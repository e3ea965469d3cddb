// Package modparams finds the parameters of the loaded diskdump module
// (doc/FORMAT.md §7): Load reads /proc/diskdump or
// /sys/module/diskdump/parameters, else returns the module defaults.
// savecore -D and dumpformat share it so that both restore the signatures
// the kernel will sample.
package modparams

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dumpkit/dumpkit/diskdump"
)

// Where the running diskdump module shows its parameters (doc/FORMAT.md §7).
const (
	ProcPath = "/proc/diskdump"
	SysDir   = "/sys/module/diskdump/parameters"
)

// Load reads the loaded module's parameters from procPath
// (/proc/diskdump, RHEL3 and RHEL4) or the files of sysDir
// (/sys/module/diskdump/parameters, RHEL4), else returns the module
// defaults (block_order 2, sample_rate 8). The string says where they came
// from: procPath, sysDir or "defaults". Unreadable sources are logged and
// skipped. dumpformat and savecore -D share it so that both restore the
// signatures the kernel will sample.
func Load(procPath, sysDir string, log *slog.Logger) (diskdump.ModuleParams, string) {
	if f, err := os.Open(procPath); err == nil {
		defer f.Close()
		p, err := diskdump.ParseProcDiskdump(f)
		if err == nil {
			return p.Params, procPath
		}
		log.Warn("ignoring {file}: {err}; the module parameters come from elsewhere", "file", procPath, "err", err)
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("ignoring the module parameters: {err}", "err", err)
	}
	entries, err := os.ReadDir(sysDir)
	if err == nil && len(entries) > 0 {
		mp := diskdump.DefaultModuleParams
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(sysDir, e.Name()))
			if err == nil {
				err = mp.SetParam(e.Name(), string(b))
			}
			if err != nil {
				log.Warn("ignoring the module parameter {name}: {err}", "name", e.Name(), "err", err)
			}
		}
		return mp, sysDir
	}
	return diskdump.DefaultModuleParams, "defaults"
}
