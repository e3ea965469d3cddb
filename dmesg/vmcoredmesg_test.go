package dmesg

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vmcore-dmesg (kexec-tools) reads ELF32 as well as ELF64 files, so it
// checks the i386 layouts that makedumpfile cannot read. Its text differs
// from makedumpfile's in two ways (doc/DMESG.md §8.2): bytes are escaped as
// unsigned (\xc3), and embedded newlines are not indented. It also prints
// a structured ring's wrap marker as an empty record.

// vmcoreDmesgText formats records as vmcore-dmesg 2.0.25 does.
func vmcoreDmesgText(recs []Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "[%5d.%06d] ", r.TsNsec/1e9, r.TsNsec%1e9/1000)
		for _, c := range r.Text {
			if c >= 0x20 && c <= 0x7e || c >= 0x09 && c <= 0x0d {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "\\x%02x", c)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestVmcoreDmesgRecords(t *testing.T) {
	for _, arch := range []Arch{X86_64, I386} {
		for _, layout := range []Layout{Lockless, Structured} {
			t.Run(arch.String()+" "+layout.String(), func(t *testing.T) {
				var img *image
				if layout == Lockless {
					img = newImage(t, arch, "6.1.0", 128<<10, 0)
					buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10,
						firstID: 0x3ffffffa, firstLpos: 5*1024 - 200, noDataless: true})
				} else {
					img = newImage(t, arch, "4.19.0", 128<<10, 0)
					// Unwrapped: vmcore-dmesg also prints the wrap marker
					// as an empty record, which makedumpfile does not.
					buildStructured(t, img, testMessages, 2048, 0, "printk_log", false)
				}
				core := filepath.Join(t.TempDir(), "vmcore")
				writeCore(t, core, img)
				want := runTool(t, "vmcore-dmesg", core)
				log, err := Read(img.memory(), arch, img.vmcoreinfo(t))
				require.NoError(t, err)
				assert.Equal(t, string(want), vmcoreDmesgText(log.Records))
			})
		}
	}
}
