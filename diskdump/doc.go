// Package diskdump is the pure format codec of Red Hat's diskdump crash-dump
// facility (RHEL3/RHEL4) and of the vmcore files savecore makes from it.
//
// It reads from io.ReaderAt with an explicit size and writes to
// io.WriterAt; it opens no files, makes no system calls and never logs.
// Byte order and word size are data: they are chosen once from a header (or
// an Arch) and kept. The specification is FORMAT.md in the project's shared
// spec folder; section numbers in comments (§n) refer to it, and [REC] marks
// a decision of ours where the original behaviour is unknown.
//
// # Dump partition
//
// Block n is bytes [n*B, (n+1)*B), B = page size of the crashed machine.
//
//	block 0                 format signature ("diskdump" + word pattern), or a swap header
//	block 1                 disk_dump_header ("DISKDUMP"), rest of block zero
//	block 2 .. 1+S          architecture sub-header (registers), S = sub_hdr_size = 1
//	block 2+S .. 1+S+R      bitmap 1: PFN-indexed, bit set = page is RAM
//	block 2+S+R .. 1+S+2R   bitmap 2 (partial or compressed dumps only): dense,
//	                        bit k = the k-th RAM page was dumped
//	block 2+S+bitmap_blocks data: one raw page per block in PFN order, or a packed
//	        ...             stream of records {page_flags u64, size u32, flags u32,
//	                        data[size]} (zlib or raw), padded with 'm' to a block
//	block written_blocks    first block the kernel did not write
//
// Every block the kernel has not written keeps the formatter's signature, so
// a data block that still matches the signature of its own block number was
// never written.
//
// # ELF vmcore (uncompressed dumps, netdump style)
//
//	Elf32/64_Ehdr | Phdr PT_NOTE | Phdr PT_LOAD (p_offset = H, p_paddr 0, p_align = B)
//	notes: CORE NT_PRSTATUS, NT_PRPSINFO, NT_TASKSTRUCT, NT_DISKDUMP
//	padding to H (a multiple of B)
//	H + pfn*B: page pfn; holes, excluded and lost pages are sparse holes
//
// # DISKDUMP vmcore (compressed dumps) and KDUMP vmcore (makedumpfile format)
//
//	block 0                 disk_dump_header (DISKDUMP: header_version 1;
//	                        KDUMP: "KDUMP   ", header_version 6)
//	block 1 .. S            sub-header (KDUMP: kdump_sub_header)
//	block 1+S .. S+R        bitmap 1, PFN-indexed
//	block 1+S+R .. S+2R     bitmap 2, PFN-indexed: pages stored in the file
//	(1+S+2R)*B              page_desc table: {offset s64, size u32, flags u32,
//	                        page_flags u64} per set bit of bitmap 2, PFN order
//	                        page data (zlib or raw pages)
package diskdump
