package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// Legacy tc attach over rtnetlink, as tc(8) and libbpf's bpf_tc_attach do
// it: a clsact qdisc on the interface and a direct-action bpf classifier
// on its ingress hook. cilium/ebpf has no netlink, and before tcx (6.6)
// this is the only way to attach a tc program. Only what that takes is
// written here.

// Values from linux/pkt_sched.h and linux/pkt_cls.h that x/sys lacks.
const (
	tcHClsact            = 0xFFFF0000 // TC_H_MAKE(TC_H_CLSACT, 0): the clsact qdisc's handle
	tcHParentClsact      = 0xFFFFFFF1 // TC_H_CLSACT, its parent
	tcHClsactIngress     = 0xFFFFFFF2 // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
	tcaBPFFD             = 6
	tcaBPFName           = 7
	tcaBPFFlags          = 8
	tcaBPFFlagActDirect  = 1
	tcFilterPrio         = 1
	nlmsgHeaderLen       = 16
	tcmsgLen             = 20
	netlinkAckBufferSize = 4096
)

// tcLink is a classifier attached with attachTC; Close removes the clsact
// qdisc, and the classifier with it.
type tcLink struct{ ifindex int }

func (l tcLink) Close() error {
	return tcRequest(unix.RTM_DELQDISC, 0, tcmsg(l.ifindex, tcHClsact, tcHParentClsact, 0), attr(unix.TCA_KIND, cstring("clsact")))
}

// attachTC attaches prog as a direct-action classifier on ifindex's
// ingress. The interface must not have a clsact qdisc already: this is
// for a guest's lo, which has none.
func attachTC(ifindex int, prog *ebpf.Program) (io.Closer, error) {
	if err := loadNamedModules(protocol.TCModules); err != nil {
		return nil, err
	}
	err := tcRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL,
		tcmsg(ifindex, tcHClsact, tcHParentClsact, 0), attr(unix.TCA_KIND, cstring("clsact")))
	if err != nil {
		return nil, fmt.Errorf("add clsact qdisc: %w", err)
	}
	l := tcLink{ifindex}
	opts := append(append(
		attr(tcaBPFFD, u32(uint32(prog.FD()))),
		attr(tcaBPFName, cstring("vmrunner"))...),
		attr(tcaBPFFlags, u32(tcaBPFFlagActDirect))...)
	info := uint32(tcFilterPrio)<<16 | uint32(htons(unix.ETH_P_ALL))
	err = tcRequest(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL,
		tcmsg(ifindex, 0, tcHClsactIngress, info), append(attr(unix.TCA_KIND, cstring("bpf")), attr(unix.TCA_OPTIONS|unix.NLA_F_NESTED, opts)...))
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("add bpf filter: %w", err)
	}
	return l, nil
}

// tcRequest sends one rtnetlink request and waits for its acknowledgement.
func tcRequest(typ uint16, flags int, msg, attrs []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind netlink socket: %w", err)
	}
	body := append(msg, attrs...)
	req := make([]byte, nlmsgHeaderLen, nlmsgHeaderLen+len(body))
	binary.NativeEndian.PutUint32(req[0:], uint32(nlmsgHeaderLen+len(body)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags))
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence
	req = append(req, body...)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, netlinkAckBufferSize)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("netlink receive: %w", err)
	}
	if n < nlmsgHeaderLen+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return errors.New("netlink: no acknowledgement")
	}
	if errno := int32(binary.NativeEndian.Uint32(buf[nlmsgHeaderLen:])); errno != 0 {
		return unix.Errno(-errno)
	}
	return nil
}

func tcmsg(ifindex int, handle, parent, info uint32) []byte {
	b := make([]byte, tcmsgLen)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint32(b[8:], handle)
	binary.NativeEndian.PutUint32(b[12:], parent)
	binary.NativeEndian.PutUint32(b[16:], info)
	return b
}

// attr is one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b
}

func cstring(s string) []byte { return append([]byte(s), 0) }

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
