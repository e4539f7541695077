//go:build linux

package ring

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

const uapiHeader = "/usr/include/linux/io_uring.h"

// TestLayoutSizes checks the sizes the kernel ABI fixes, without a compiler.
func TestLayoutSizes(t *testing.T) {
	for name, got := range map[string]uintptr{
		"SQE": unsafe.Sizeof(SQE{}), "CQE": unsafe.Sizeof(CQE{}), "Params": unsafe.Sizeof(Params{}),
		"SQRingOffsets": unsafe.Sizeof(SQRingOffsets{}), "CQRingOffsets": unsafe.Sizeof(CQRingOffsets{}),
		"getEventsArg": unsafe.Sizeof(getEventsArg{}), "bufEntry": unsafe.Sizeof(bufEntry{}),
		"bufReg": unsafe.Sizeof(bufReg{}), "rsrcUpdate": unsafe.Sizeof(rsrcUpdate{}),
		"rsrcRegister": unsafe.Sizeof(rsrcRegister{}), "probeOp": unsafe.Sizeof(probeOp{}),
	} {
		want := map[string]uintptr{
			"SQE": 64, "CQE": 16, "Params": 120, "SQRingOffsets": 40, "CQRingOffsets": 40,
			"getEventsArg": 24, "bufEntry": 16, "bufReg": 40, "rsrcUpdate": 16,
			"rsrcRegister": 32, "probeOp": 8,
		}[name]
		if got != want {
			t.Errorf("sizeof %s = %d, want %d", name, got, want)
		}
	}
}

// goLayout lists, under the C names of <linux/io_uring.h>, the sizes, field
// offsets and constants of this package. Union members that share a Go field
// are listed under each C name.
func goLayout() map[string]uint64 {
	var (
		sqe    SQE
		cqe    CQE
		p      Params
		so     SQRingOffsets
		co     CQRingOffsets
		buf    bufEntry
		reg    bufReg
		up     rsrcUpdate
		rr     rsrcRegister
		pr     probe
		po     probeOp
		ga     getEventsArg
		rng    fileIndexRange
		layout = map[string]uint64{}
	)
	off := func(name string, v uintptr) { layout[name] = uint64(v) }
	off("sizeof io_uring_sqe", unsafe.Sizeof(sqe))
	off("io_uring_sqe.opcode", unsafe.Offsetof(sqe.Opcode))
	off("io_uring_sqe.flags", unsafe.Offsetof(sqe.Flags))
	off("io_uring_sqe.ioprio", unsafe.Offsetof(sqe.IoPrio))
	off("io_uring_sqe.fd", unsafe.Offsetof(sqe.Fd))
	off("io_uring_sqe.off", unsafe.Offsetof(sqe.Off))
	off("io_uring_sqe.addr2", unsafe.Offsetof(sqe.Off))
	off("io_uring_sqe.addr", unsafe.Offsetof(sqe.Addr))
	off("io_uring_sqe.splice_off_in", unsafe.Offsetof(sqe.Addr))
	off("io_uring_sqe.len", unsafe.Offsetof(sqe.Len))
	for _, f := range []string{"rw_flags", "fsync_flags", "poll32_events", "msg_flags", "timeout_flags", "accept_flags", "cancel_flags", "open_flags", "statx_flags", "splice_flags", "msg_ring_flags"} {
		off("io_uring_sqe."+f, unsafe.Offsetof(sqe.OpFlags))
	}
	off("io_uring_sqe.user_data", unsafe.Offsetof(sqe.UserData))
	off("io_uring_sqe.buf_index", unsafe.Offsetof(sqe.BufIndex))
	off("io_uring_sqe.buf_group", unsafe.Offsetof(sqe.BufIndex))
	off("io_uring_sqe.personality", unsafe.Offsetof(sqe.Personality))
	off("io_uring_sqe.splice_fd_in", unsafe.Offsetof(sqe.SpliceFdIn))
	off("io_uring_sqe.file_index", unsafe.Offsetof(sqe.SpliceFdIn))
	off("io_uring_sqe.addr3", unsafe.Offsetof(sqe.Addr3))

	off("sizeof io_uring_cqe", unsafe.Sizeof(cqe))
	off("io_uring_cqe.user_data", unsafe.Offsetof(cqe.UserData))
	off("io_uring_cqe.res", unsafe.Offsetof(cqe.Res))
	off("io_uring_cqe.flags", unsafe.Offsetof(cqe.Flags))

	off("sizeof io_uring_params", unsafe.Sizeof(p))
	off("io_uring_params.sq_entries", unsafe.Offsetof(p.SQEntries))
	off("io_uring_params.cq_entries", unsafe.Offsetof(p.CQEntries))
	off("io_uring_params.flags", unsafe.Offsetof(p.Flags))
	off("io_uring_params.sq_thread_cpu", unsafe.Offsetof(p.SQThreadCPU))
	off("io_uring_params.sq_thread_idle", unsafe.Offsetof(p.SQThreadIdle))
	off("io_uring_params.features", unsafe.Offsetof(p.Features))
	off("io_uring_params.wq_fd", unsafe.Offsetof(p.WQFd))
	off("io_uring_params.sq_off", unsafe.Offsetof(p.SQOff))
	off("io_uring_params.cq_off", unsafe.Offsetof(p.CQOff))

	off("sizeof io_sqring_offsets", unsafe.Sizeof(so))
	off("io_sqring_offsets.head", unsafe.Offsetof(so.Head))
	off("io_sqring_offsets.tail", unsafe.Offsetof(so.Tail))
	off("io_sqring_offsets.ring_mask", unsafe.Offsetof(so.RingMask))
	off("io_sqring_offsets.ring_entries", unsafe.Offsetof(so.RingEntries))
	off("io_sqring_offsets.flags", unsafe.Offsetof(so.Flags))
	off("io_sqring_offsets.dropped", unsafe.Offsetof(so.Dropped))
	off("io_sqring_offsets.array", unsafe.Offsetof(so.Array))
	off("io_sqring_offsets.user_addr", unsafe.Offsetof(so.UserAddr))
	off("io_sqring_offsets.resv2", unsafe.Offsetof(so.UserAddr)) // its name before 6.5

	off("sizeof io_cqring_offsets", unsafe.Sizeof(co))
	off("io_cqring_offsets.head", unsafe.Offsetof(co.Head))
	off("io_cqring_offsets.tail", unsafe.Offsetof(co.Tail))
	off("io_cqring_offsets.ring_mask", unsafe.Offsetof(co.RingMask))
	off("io_cqring_offsets.ring_entries", unsafe.Offsetof(co.RingEntries))
	off("io_cqring_offsets.overflow", unsafe.Offsetof(co.Overflow))
	off("io_cqring_offsets.cqes", unsafe.Offsetof(co.CQEs))
	off("io_cqring_offsets.flags", unsafe.Offsetof(co.Flags))
	off("io_cqring_offsets.user_addr", unsafe.Offsetof(co.UserAddr))
	off("io_cqring_offsets.resv2", unsafe.Offsetof(co.UserAddr))

	off("sizeof io_uring_buf", unsafe.Sizeof(buf))
	off("io_uring_buf.addr", unsafe.Offsetof(buf.addr))
	off("io_uring_buf.len", unsafe.Offsetof(buf.len))
	off("io_uring_buf.bid", unsafe.Offsetof(buf.bid))
	off("io_uring_buf_ring.tail", 14) // BufRing.Advance stores it there

	off("sizeof io_uring_buf_reg", unsafe.Sizeof(reg))
	off("io_uring_buf_reg.ring_addr", unsafe.Offsetof(reg.ringAddr))
	off("io_uring_buf_reg.ring_entries", unsafe.Offsetof(reg.ringEntries))
	off("io_uring_buf_reg.bgid", unsafe.Offsetof(reg.bgid))
	off("io_uring_buf_reg.flags", unsafe.Offsetof(reg.flags))
	off("io_uring_buf_reg.pad", unsafe.Offsetof(reg.flags)) // its name before 6.7

	off("sizeof io_uring_rsrc_update", unsafe.Sizeof(up))
	off("io_uring_rsrc_update.offset", unsafe.Offsetof(up.offset))
	off("io_uring_rsrc_update.data", unsafe.Offsetof(up.data))
	off("sizeof io_uring_files_update", unsafe.Sizeof(up))
	off("io_uring_files_update.offset", unsafe.Offsetof(up.offset))
	off("io_uring_files_update.fds", unsafe.Offsetof(up.data))

	off("sizeof io_uring_rsrc_register", unsafe.Sizeof(rr))
	off("io_uring_rsrc_register.nr", unsafe.Offsetof(rr.nr))
	off("io_uring_rsrc_register.flags", unsafe.Offsetof(rr.flags))
	off("io_uring_rsrc_register.data", unsafe.Offsetof(rr.data))
	off("io_uring_rsrc_register.tags", unsafe.Offsetof(rr.tags))

	off("sizeof io_uring_probe", unsafe.Offsetof(pr.ops)) // without the flexible array
	off("io_uring_probe.last_op", unsafe.Offsetof(pr.lastOp))
	off("io_uring_probe.ops_len", unsafe.Offsetof(pr.opsLen))
	off("io_uring_probe.ops", unsafe.Offsetof(pr.ops))
	off("sizeof io_uring_probe_op", unsafe.Sizeof(po))
	off("io_uring_probe_op.op", unsafe.Offsetof(po.op))
	off("io_uring_probe_op.flags", unsafe.Offsetof(po.flags))

	off("sizeof io_uring_getevents_arg", unsafe.Sizeof(ga))
	off("io_uring_getevents_arg.sigmask", unsafe.Offsetof(ga.sigmask))
	off("io_uring_getevents_arg.sigmask_sz", unsafe.Offsetof(ga.sigmaskSz))
	off("io_uring_getevents_arg.min_wait_usec", unsafe.Offsetof(ga.minWaitUsec))
	off("io_uring_getevents_arg.pad", unsafe.Offsetof(ga.minWaitUsec)) // its name before 6.12
	off("io_uring_getevents_arg.ts", unsafe.Offsetof(ga.ts))

	off("sizeof io_uring_file_index_range", unsafe.Sizeof(rng))
	off("io_uring_file_index_range.off", unsafe.Offsetof(rng.off))
	off("io_uring_file_index_range.len", unsafe.Offsetof(rng.len))

	for i, name := range opNames {
		layout["IORING_OP_"+name] = uint64(i)
	}
	for name, v := range constants {
		layout[name] = v
	}
	return layout
}

// opNames are the kernel's opcode names in order (Op values 0..).
var opNames = []string{"NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD",
	"POLL_REMOVE", "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE", "ACCEPT",
	"ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE", "STATX",
	"READ", "WRITE", "FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL", "SPLICE",
	"PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT", "UNLINKAT", "MKDIRAT",
	"SYMLINKAT", "LINKAT", "MSG_RING", "FSETXATTR", "SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET",
	"URING_CMD", "SEND_ZC", "SENDMSG_ZC", "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE",
	"FUTEX_WAITV", "FIXED_FD_INSTALL", "FTRUNCATE", "BIND", "LISTEN"}

// constants maps the kernel's names to this package's values.
var constants = map[string]uint64{
	"IORING_SETUP_IOPOLL": uint64(SetupIOPoll), "IORING_SETUP_SQPOLL": uint64(SetupSQPoll),
	"IORING_SETUP_SQ_AFF": uint64(SetupSQAff), "IORING_SETUP_CQSIZE": uint64(SetupCQSize),
	"IORING_SETUP_CLAMP": uint64(SetupClamp), "IORING_SETUP_ATTACH_WQ": uint64(SetupAttachWQ),
	"IORING_SETUP_R_DISABLED": uint64(SetupRDisabled), "IORING_SETUP_SUBMIT_ALL": uint64(SetupSubmitAll),
	"IORING_SETUP_COOP_TASKRUN": uint64(SetupCoopTaskrun), "IORING_SETUP_TASKRUN_FLAG": uint64(SetupTaskrunFlag),
	"IORING_SETUP_SQE128": uint64(SetupSQE128), "IORING_SETUP_CQE32": uint64(SetupCQE32),
	"IORING_SETUP_SINGLE_ISSUER": uint64(SetupSingleIssuer), "IORING_SETUP_DEFER_TASKRUN": uint64(SetupDeferTaskrun),
	"IORING_SETUP_NO_MMAP": uint64(SetupNoMmap), "IORING_SETUP_REGISTERED_FD_ONLY": uint64(SetupRegisteredFdOnly),
	"IORING_SETUP_NO_SQARRAY": uint64(SetupNoSQArray),

	"IORING_FEAT_SINGLE_MMAP": uint64(FeatSingleMmap), "IORING_FEAT_NODROP": uint64(FeatNoDrop),
	"IORING_FEAT_SUBMIT_STABLE": uint64(FeatSubmitStable), "IORING_FEAT_RW_CUR_POS": uint64(FeatRWCurPos),
	"IORING_FEAT_CUR_PERSONALITY": uint64(FeatCurPersonality), "IORING_FEAT_FAST_POLL": uint64(FeatFastPoll),
	"IORING_FEAT_POLL_32BITS": uint64(FeatPoll32Bits), "IORING_FEAT_SQPOLL_NONFIXED": uint64(FeatSQPollNonfixed),
	"IORING_FEAT_EXT_ARG": uint64(FeatExtArg), "IORING_FEAT_NATIVE_WORKERS": uint64(FeatNativeWorkers),
	"IORING_FEAT_RSRC_TAGS": uint64(FeatRsrcTags), "IORING_FEAT_CQE_SKIP": uint64(FeatCQESkip),
	"IORING_FEAT_LINKED_FILE": uint64(FeatLinkedFile), "IORING_FEAT_REG_REG_RING": uint64(FeatRegRegRing),
	"IORING_FEAT_RECVSEND_BUNDLE": uint64(FeatRecvSendBundle), "IORING_FEAT_MIN_TIMEOUT": uint64(FeatMinTimeout),

	"IOSQE_FIXED_FILE": uint64(SQEFixedFile), "IOSQE_IO_DRAIN": uint64(SQEIODrain),
	"IOSQE_IO_LINK": uint64(SQEIOLink), "IOSQE_IO_HARDLINK": uint64(SQEIOHardlink),
	"IOSQE_ASYNC": uint64(SQEAsync), "IOSQE_BUFFER_SELECT": uint64(SQEBufferSelect),
	"IOSQE_CQE_SKIP_SUCCESS": uint64(SQECQESkipSuccess),

	"IORING_CQE_F_BUFFER": uint64(CQEFBuffer), "IORING_CQE_F_MORE": uint64(CQEFMore),
	"IORING_CQE_F_SOCK_NONEMPTY": uint64(CQEFSockNonempty), "IORING_CQE_F_NOTIF": uint64(CQEFNotif),
	"IORING_CQE_F_BUF_MORE": uint64(CQEFBufMore), "IORING_CQE_BUFFER_SHIFT": cqeBufferShift,

	"IORING_SQ_NEED_WAKEUP": uint64(sqNeedWakeup), "IORING_SQ_CQ_OVERFLOW": uint64(sqCQOverflow),
	"IORING_SQ_TASKRUN": uint64(sqTaskrun),

	"IORING_ENTER_GETEVENTS": uint64(enterGetEvents), "IORING_ENTER_SQ_WAKEUP": uint64(enterSQWakeup),
	"IORING_ENTER_SQ_WAIT": uint64(enterSQWait), "IORING_ENTER_EXT_ARG": uint64(enterExtArg),
	"IORING_ENTER_REGISTERED_RING": uint64(enterRegisteredRing),

	"IORING_FSYNC_DATASYNC": uint64(FsyncDatasync), "IORING_POLL_ADD_MULTI": uint64(PollAddMulti),
	"IORING_TIMEOUT_ABS": uint64(TimeoutAbs), "IORING_TIMEOUT_UPDATE": uint64(TimeoutUpdate),
	"IORING_TIMEOUT_BOOTTIME": uint64(TimeoutBoottime), "IORING_TIMEOUT_REALTIME": uint64(TimeoutRealtime),
	"IORING_TIMEOUT_ETIME_SUCCESS": uint64(TimeoutETimeSuccess), "IORING_TIMEOUT_MULTISHOT": uint64(TimeoutMultishot),
	"IORING_ASYNC_CANCEL_ALL": uint64(CancelAll), "IORING_ASYNC_CANCEL_FD": uint64(CancelFd),
	"IORING_ASYNC_CANCEL_ANY": uint64(CancelAny), "IORING_ASYNC_CANCEL_FD_FIXED": uint64(CancelFdFixed),
	"IORING_ASYNC_CANCEL_USERDATA": uint64(CancelUserdata), "IORING_ASYNC_CANCEL_OP": uint64(CancelOp),
	"IORING_RECVSEND_POLL_FIRST": uint64(RecvSendPollFirst), "IORING_RECV_MULTISHOT": uint64(RecvMultishot),
	"IORING_RECVSEND_FIXED_BUF": uint64(RecvSendFixedBuf), "IORING_SEND_ZC_REPORT_USAGE": uint64(SendZCReportUsage),
	"IORING_RECVSEND_BUNDLE":  uint64(RecvSendBundle),
	"IORING_ACCEPT_MULTISHOT": uint64(AcceptMultishot), "IORING_ACCEPT_DONTWAIT": uint64(AcceptDontwait),
	"IORING_ACCEPT_POLL_FIRST": uint64(AcceptPollFirst),
	"IORING_MSG_RING_CQE_SKIP": uint64(MsgRingCQESkip), "IORING_MSG_RING_FLAGS_PASS": uint64(MsgRingFlagsPass),
	"IORING_MSG_DATA": msgData, "IORING_MSG_SEND_FD": msgSendFd,
	"IORING_FILE_INDEX_ALLOC": uint64(FileIndexAlloc), "SPLICE_F_FD_IN_FIXED": uint64(SpliceFdInFixed),

	"IORING_OFF_SQ_RING": offSQRing, "IORING_OFF_CQ_RING": offCQRing, "IORING_OFF_SQES": offSQEs,

	"IORING_REGISTER_BUFFERS": regBuffers, "IORING_UNREGISTER_BUFFERS": unregBuffers,
	"IORING_REGISTER_FILES": regFiles, "IORING_UNREGISTER_FILES": unregFiles,
	"IORING_REGISTER_EVENTFD": regEventfd, "IORING_UNREGISTER_EVENTFD": unregEventfd,
	"IORING_REGISTER_FILES_UPDATE": regFilesUpdate, "IORING_REGISTER_EVENTFD_ASYNC": regEventfdAsync,
	"IORING_REGISTER_PROBE": regProbe, "IORING_REGISTER_FILES2": regFiles2,
	"IORING_REGISTER_FILES_UPDATE2": regFilesUpdate2, "IORING_REGISTER_RING_FDS": regRingFds,
	"IORING_UNREGISTER_RING_FDS": unregRingFds, "IORING_REGISTER_PBUF_RING": regPbufRing,
	"IORING_UNREGISTER_PBUF_RING": unregPbufRing, "IORING_REGISTER_FILE_ALLOC_RANGE": regFileAllocRange,
	"IORING_RSRC_REGISTER_SPARSE": rsrcRegisterSparse, "IOU_PBUF_RING_INC": pbufRingInc,
	"IO_URING_OP_SUPPORTED": probeOpSupported,
}

// TestLayoutMatchesKernelHeader compiles a C program against the installed
// <linux/io_uring.h> and compares every size, offset and constant it knows
// with ours. The header may be older than the kernel (Debian 12 ships 6.1):
// names it lacks are skipped, and listed with -v.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	hdr, err := os.ReadFile(uapiHeader)
	if err != nil {
		t.Skipf("no kernel header: %v", err)
	}
	layout := goLayout()
	var names []string
	for name := range layout {
		names = append(names, name)
	}
	sort.Strings(names)

	// Ask C only about what the header names.
	hasIn := func(text []byte, word string) bool {
		return regexp.MustCompile(`\b` + regexp.QuoteMeta(word) + `\b`).Match(text)
	}
	has := func(word string) bool { return hasIn(hdr, word) }
	body := func(typ string) []byte { // the text between struct typ's braces
		i := regexp.MustCompile(`struct ` + typ + `\s*\{`).FindIndex(hdr)
		if i == nil {
			return nil
		}
		depth := 1
		for j := i[1]; j < len(hdr); j++ {
			switch hdr[j] {
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					return hdr[i[1]:j]
				}
			}
		}
		return nil
	}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/io_uring.h>\n#include <linux/fcntl.h>\nint main(void) {\n")
	var missing []string
	asked := 0
	for _, name := range names {
		var expr string
		switch {
		case strings.HasPrefix(name, "sizeof "):
			typ := strings.TrimPrefix(name, "sizeof ")
			if body(typ) == nil {
				missing = append(missing, name)
				continue
			}
			expr = "sizeof(struct " + typ + ")"
		case strings.Contains(name, "."):
			typ, field, _ := strings.Cut(name, ".")
			if !hasIn(body(typ), field) {
				missing = append(missing, name)
				continue
			}
			expr = "offsetof(struct " + typ + ", " + field + ")"
		default:
			if !has(name) {
				missing = append(missing, name)
				continue
			}
			expr = name
		}
		asked++
		fmt.Fprintf(&src, "\tprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n", name, expr)
	}
	src.WriteString("\treturn 0;\n}\n")

	dir := t.TempDir()
	cfile, bin := filepath.Join(dir, "layout.c"), filepath.Join(dir, "layout")
	if err := os.WriteFile(cfile, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		name := line[:i]
		cval, err := strconv.ParseUint(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		if cval != layout[name] {
			t.Errorf("%s: kernel header says %d, ring has %d", name, cval, layout[name])
		}
		checked++
	}
	if checked != asked || checked < 200 {
		t.Fatalf("checked %d of %d asked", checked, asked)
	}
	t.Logf("%d sizes, offsets and constants match %s; not in that header: %v", checked, uapiHeader, missing)
}
