package blockdev

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Signature is a piece of existing content found by [Probe].
type Signature struct {
	// Kind is the blkid-style type: "swap", "ext2", "ext3", "ext4", "jbd",
	// "xfs", "btrfs", "vfat", "LVM2_member" or "crypto_LUKS".
	Kind string
	// Off is the byte offset of the magic number that identified it.
	Off int64
	// Detail is a human-readable description (label, UUID, version), for
	// messages only.
	Detail string
}

// String returns e.g. `ext4 at offset 0x438 (uuid=…)`.
func (s Signature) String() string {
	str := fmt.Sprintf("%s at offset %#x", s.Kind, s.Off)
	if s.Detail != "" {
		str += " (" + s.Detail + ")"
	}
	return str
}

// On-disk locations of the magic numbers Probe looks for.
const (
	extSuperOff      = 1024    // ext2/3/4 superblock
	btrfsSuperOff    = 0x10000 // first Btrfs superblock
	lvmLabelSectors  = 4       // LVM2 label is in one of the first 4 sectors
	lvmSectorSize    = 512
	fatBootSectorLen = 512
)

// ext feature flags that decide between ext2, ext3 and ext4 as blkid does:
// anything beyond what ext3 supports makes it ext4.
const (
	extCompatHasJournal      = 0x0004
	extIncompatFiletype      = 0x0002
	extIncompatRecover       = 0x0004
	extIncompatJournalDev    = 0x0008
	extIncompatMetaBG        = 0x0010
	extROCompatSparseSuper   = 0x0001
	extROCompatLargeFile     = 0x0002
	extROCompatBtreeDir      = 0x0004
	ext3IncompatSupported    = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	ext3ROCompatSupported    = extROCompatSparseSuper | extROCompatLargeFile | extROCompatBtreeDir
	extSuperMagic            = 0xEF53
	extSuperMagicOff         = 0x38
	extSuperFeatureCompatOff = 0x5C
)

// swapPageSizes are the page sizes whose swap signature Probe checks: the
// signature ends the first page.
var swapPageSizes = []int64{4096, 8192, 16384, 65536}

// Probe looks for known filesystem, swap, volume-manager and encryption
// signatures in the first bytes of a device of the given size, and returns
// every one it finds, in the order of the checks. A device too small to hold
// a signature simply lacks it; read errors other than io.EOF are returned.
func Probe(r io.ReaderAt, size int64) ([]Signature, error) {
	p := prober{r: r, size: size}
	for _, probe := range []func() error{p.luks, p.lvm2, p.xfs, p.ext, p.btrfs, p.vfat, p.swap} {
		if err := probe(); err != nil {
			return p.found, err
		}
	}
	return p.found, nil
}

type prober struct {
	r     io.ReaderAt
	size  int64
	found []Signature
}

// read returns n bytes at off, or nil when they lie beyond the device.
func (p *prober) read(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > p.size {
		return nil, nil
	}
	b := make([]byte, n)
	m, err := p.r.ReadAt(b, off)
	if m == n {
		return b, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return nil, fmt.Errorf("blockdev: probe: reading %d bytes at offset %#x: %w", n, off, err)
}

func (p *prober) add(kind string, off int64, detail ...string) {
	p.found = append(p.found, Signature{Kind: kind, Off: off, Detail: strings.Join(detail, " ")})
}

// cstr returns a NUL-padded on-disk string field.
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " ")
}

func uuid(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func labelled(label, uuidStr string) []string {
	var d []string
	if label != "" {
		d = append(d, "label="+label)
	}
	if uuidStr != "" {
		d = append(d, "uuid="+uuidStr)
	}
	return d
}

// luks: "LUKS\xba\xbe" at 0, big-endian version at 6, UUID string at 168.
func (p *prober) luks() error {
	b, err := p.read(0, 208)
	if b == nil {
		return err
	}
	if !bytes.Equal(b[:6], []byte("LUKS\xba\xbe")) {
		return nil
	}
	p.add("crypto_LUKS", 0, fmt.Sprintf("version=%d", binary.BigEndian.Uint16(b[6:8])),
		"uuid="+cstr(b[168:208]))
	return nil
}

// lvm2: a label_header with "LABELONE" at the start of one of the first four
// sectors, its own sector number (le64) at +8, the pv_header offset (le32)
// at +20 and "LVM2 001" at +24. The pv_header starts with the 32-char PV UUID.
func (p *prober) lvm2() error {
	for sector := int64(0); sector < lvmLabelSectors; sector++ {
		off := sector * lvmSectorSize
		b, err := p.read(off, lvmSectorSize)
		if b == nil {
			return err
		}
		if !bytes.Equal(b[:8], []byte("LABELONE")) || !bytes.Equal(b[24:32], []byte("LVM2 001")) {
			continue
		}
		if binary.LittleEndian.Uint64(b[8:16]) != uint64(sector) {
			continue
		}
		var detail []string
		if pvOff := int(binary.LittleEndian.Uint32(b[20:24])); pvOff >= 32 && pvOff+32 <= len(b) {
			detail = append(detail, "uuid="+cstr(b[pvOff:pvOff+32]))
		}
		p.add("LVM2_member", off, detail...)
		return nil
	}
	return nil
}

// xfs: "XFSB" at 0, UUID at 32, 12-byte label at 108.
func (p *prober) xfs() error {
	b, err := p.read(0, 120)
	if b == nil {
		return err
	}
	if !bytes.Equal(b[:4], []byte("XFSB")) {
		return nil
	}
	p.add("xfs", 0, labelled(cstr(b[108:120]), uuid(b[32:48]))...)
	return nil
}

// ext: superblock at 1024 with magic 0xEF53 (le16) at +0x38, features at
// +0x5C (compat), +0x60 (incompat), +0x64 (ro_compat), UUID at +0x68 and
// 16-byte label at +0x78.
func (p *prober) ext() error {
	b, err := p.read(extSuperOff, 0x88)
	if b == nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint16(b[extSuperMagicOff:]) != extSuperMagic {
		return nil
	}
	compat := le.Uint32(b[extSuperFeatureCompatOff:])
	incompat := le.Uint32(b[0x60:])
	roCompat := le.Uint32(b[0x64:])
	var kind string
	switch {
	case incompat&extIncompatJournalDev != 0:
		kind = "jbd"
	case incompat&^ext3IncompatSupported != 0 || roCompat&^ext3ROCompatSupported != 0:
		kind = "ext4"
	case compat&extCompatHasJournal != 0:
		kind = "ext3"
	default:
		kind = "ext2"
	}
	p.add(kind, extSuperOff+extSuperMagicOff, labelled(cstr(b[0x78:0x88]), uuid(b[0x68:0x78]))...)
	return nil
}

// btrfs: superblock at 64 KiB with fsid at +0x20, "_BHRfS_M" at +0x40 and a
// 256-byte label at +0x12b.
func (p *prober) btrfs() error {
	b, err := p.read(btrfsSuperOff, 0x12b+256)
	if b == nil {
		return err
	}
	if !bytes.Equal(b[0x40:0x48], []byte("_BHRfS_M")) {
		return nil
	}
	p.add("btrfs", btrfsSuperOff+0x40, labelled(cstr(b[0x12b:0x12b+256]), uuid(b[0x20:0x30]))...)
	return nil
}

// vfat: boot sector ending in 0x55 0xAA, with the FAT12/16 file-system type
// string at 54 (label at 43) or the FAT32 one at 82 (label at 71).
func (p *prober) vfat() error {
	b, err := p.read(0, fatBootSectorLen)
	if b == nil {
		return err
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return nil
	}
	switch {
	case bytes.HasPrefix(b[82:90], []byte("FAT32   ")):
		p.add("vfat", 82, append([]string{"FAT32"}, labelled(cstr(b[71:82]), "")...)...)
	case bytes.HasPrefix(b[54:62], []byte("FAT")):
		p.add("vfat", 54, append([]string{cstr(b[54:62])}, labelled(cstr(b[43:54]), "")...)...)
	}
	return nil
}

// swap: "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10 bytes of the
// first page, for each page size a kernel may have used. A version-1 header
// has its UUID at 1036 and a 16-byte label at 1052.
func (p *prober) swap() error {
	for _, page := range swapPageSizes {
		off := page - 10
		b, err := p.read(off, 10)
		if b == nil {
			if err != nil {
				return err
			}
			continue
		}
		magic := string(b)
		if magic != "SWAPSPACE2" && magic != "SWAP-SPACE" {
			continue
		}
		detail := []string{fmt.Sprintf("pagesize=%d", page)}
		if magic == "SWAPSPACE2" {
			if h, err := p.read(1036, 32); err != nil {
				return err
			} else if h != nil {
				detail = append(detail, labelled(cstr(h[16:32]), uuid(h[0:16]))...)
			}
		} else {
			detail = append(detail, "version=0")
		}
		p.add("swap", off, detail...)
		return nil
	}
	return nil
}
