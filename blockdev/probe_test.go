package blockdev_test

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/blockdev"
	"github.com/dumpkit/dumpkit/internal/blockdevtest"
)

const probeSize = 128 << 10 // large enough for the Btrfs superblock at 64 KiB

// extImage returns a buffer with an ext superblock carrying the features.
func extImage(compat, incompat, roCompat uint32) []byte {
	b := make([]byte, probeSize)
	sb := b[1024:]
	le := binary.LittleEndian
	le.PutUint16(sb[0x38:], 0xEF53)
	le.PutUint32(sb[0x5C:], compat)
	le.PutUint32(sb[0x60:], incompat)
	le.PutUint32(sb[0x64:], roCompat)
	copy(sb[0x68:], []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00})
	copy(sb[0x78:], "root")
	return b
}

func with(f func(b []byte)) []byte {
	b := make([]byte, probeSize)
	f(b)
	return b
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name string
		img  []byte
		want []blockdev.Signature
	}{
		{"empty", make([]byte, probeSize), nil},
		{"ext2", extImage(0x38, 0x2, 0x3), []blockdev.Signature{
			{Kind: "ext2", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"ext3 has_journal", extImage(0x3c, 0x2, 0x3), []blockdev.Signature{
			{Kind: "ext3", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"ext4 extents", extImage(0x3c, 0x2|0x40, 0x3), []blockdev.Signature{
			{Kind: "ext4", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"ext4 flex_bg without journal", extImage(0x38, 0x2|0x200, 0x3), []blockdev.Signature{
			{Kind: "ext4", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"ext4 64bit", extImage(0x3c, 0x80, 0), []blockdev.Signature{
			{Kind: "ext4", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"ext4 metadata_csum ro_compat", extImage(0x3c, 0x2, 0x400), []blockdev.Signature{
			{Kind: "ext4", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"jbd", extImage(0, 0x8, 0), []blockdev.Signature{
			{Kind: "jbd", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"}}},
		{"swap 4k", with(func(b []byte) {
			copy(b[4096-10:], "SWAPSPACE2")
			copy(b[1036:], []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			copy(b[1052:], "dumpswap")
		}), []blockdev.Signature{{Kind: "swap", Off: 4086, Detail: "pagesize=4096 label=dumpswap uuid=01020304-0506-0708-090a-0b0c0d0e0f10"}}},
		{"swap 64k old", with(func(b []byte) { copy(b[65536-10:], "SWAP-SPACE") }),
			[]blockdev.Signature{{Kind: "swap", Off: 65526, Detail: "pagesize=65536 version=0"}}},
		{"swap 16k", with(func(b []byte) { copy(b[16384-10:], "SWAPSPACE2") }),
			[]blockdev.Signature{{Kind: "swap", Off: 16374, Detail: "pagesize=16384 uuid=00000000-0000-0000-0000-000000000000"}}},
		{"xfs", with(func(b []byte) {
			copy(b, "XFSB")
			copy(b[32:], []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
			copy(b[108:], "xlabel")
		}), []blockdev.Signature{{Kind: "xfs", Off: 0, Detail: "label=xlabel uuid=deadbeef-0000-0000-0000-000000000001"}}},
		{"btrfs", with(func(b []byte) {
			copy(b[65536+0x40:], "_BHRfS_M")
			copy(b[65536+0x20:], []byte{0xca, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
			copy(b[65536+0x12b:], "pool")
		}), []blockdev.Signature{{Kind: "btrfs", Off: 65536 + 0x40, Detail: "label=pool uuid=cafe0000-0000-0000-0000-000000000002"}}},
		{"vfat16", with(func(b []byte) {
			copy(b[43:], "BOOT       FAT16   ")
			b[510], b[511] = 0x55, 0xAA
		}), []blockdev.Signature{{Kind: "vfat", Off: 54, Detail: "FAT16 label=BOOT"}}},
		{"vfat32", with(func(b []byte) {
			copy(b[54:], "FAT16   ") // FAT32 boot sectors hold other data here
			copy(b[71:], "NO NAME    FAT32   ")
			b[510], b[511] = 0x55, 0xAA
		}), []blockdev.Signature{{Kind: "vfat", Off: 82, Detail: "FAT32 label=NO NAME"}}},
		{"vfat without 55AA", with(func(b []byte) { copy(b[54:], "FAT16   ") }), nil},
		{"lvm2 sector 1", with(func(b []byte) {
			l := b[512:]
			copy(l, "LABELONE")
			binary.LittleEndian.PutUint64(l[8:], 1)
			binary.LittleEndian.PutUint32(l[20:], 32)
			copy(l[24:], "LVM2 001")
			copy(l[32:], "AbCdEfGhIjKlMnOpQrStUvWxYz012345")
		}), []blockdev.Signature{{Kind: "LVM2_member", Off: 512, Detail: "uuid=AbCdEfGhIjKlMnOpQrStUvWxYz012345"}}},
		{"lvm2 wrong sector number", with(func(b []byte) {
			copy(b[1024:], "LABELONE")
			copy(b[1024+24:], "LVM2 001")
		}), nil},
		{"lvm2 in sector 4 is ignored", with(func(b []byte) {
			l := b[4*512:]
			copy(l, "LABELONE")
			binary.LittleEndian.PutUint64(l[8:], 4)
			copy(l[24:], "LVM2 001")
		}), nil},
		{"luks2", with(func(b []byte) {
			copy(b, "LUKS\xba\xbe\x00\x02")
			copy(b[168:], "0f3c5a4e-1111-2222-3333-444455556666")
		}), []blockdev.Signature{{Kind: "crypto_LUKS", Off: 0, Detail: "version=2 uuid=0f3c5a4e-1111-2222-3333-444455556666"}}},
		{"ext4 over old swap", with(func(b []byte) {
			copy(b, extImage(0x3c, 0x40, 0))
			copy(b[4086:], "SWAPSPACE2")
		}), []blockdev.Signature{
			{Kind: "ext4", Off: 1024 + 0x38, Detail: "label=root uuid=11223344-5566-7788-99aa-bbccddeeff00"},
			{Kind: "swap", Off: 4086, Detail: "pagesize=4096 uuid=00000000-0000-0000-0000-000000000000"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := blockdev.Probe(memfile.New(tc.img), int64(len(tc.img)))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestProbeSmallDevice(t *testing.T) {
	// Each size cuts one signature off; none may cause an error.
	for _, size := range []int64{0, 1, 511, 4095, 4096, 65535} {
		b := make([]byte, size)
		if size >= 4096 {
			copy(b[4086:], "SWAPSPACE2")
		}
		got, err := blockdev.Probe(memfile.New(b), size)
		require.NoError(t, err, "size %d", size)
		if size >= 4096 {
			require.Len(t, got, 1)
			assert.Equal(t, "swap", got[0].Kind)
		} else {
			assert.Empty(t, got)
		}
	}
	// A size larger than the data (a short reader) is not an error either.
	got, err := blockdev.Probe(memfile.New(make([]byte, 100)), 1<<20)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestProbeReadError(t *testing.T) {
	img := extImage(0x3c, 0x40, 0)
	dev := blockdevtest.NewFaultDevice(img)
	dev.FailRead = blockdevtest.BadRange(1024, 2048)
	_, err := blockdev.Probe(dev, dev.Size())
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EIO)
	assert.Contains(t, err.Error(), "blockdev: probe")
}

func TestSignatureString(t *testing.T) {
	assert.Equal(t, "xfs at offset 0x0 (label=a)", blockdev.Signature{Kind: "xfs", Detail: "label=a"}.String())
	assert.Equal(t, "swap at offset 0xff6", blockdev.Signature{Kind: "swap", Off: 4086}.String())
}
