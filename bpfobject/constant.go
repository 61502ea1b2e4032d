package bpfobject

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// ConstantBytes returns the bytes a loader writes for constant name of
// spec, given value as written in matrix.yaml. A constant is a global in a
// read-only data section (volatile const, in .rodata), and its BTF type says
// what value fits: a bool takes true or false, an integer a number (decimal,
// 0x hex, 0o octal or 0b binary; a char is an integer too) in its size and
// sign, an enum one of its names or a number. The bytes are in the object's
// byte order.
func ConstantBytes(spec *ebpf.CollectionSpec, name, value string) ([]byte, error) {
	v, ok := spec.Variables[name]
	if !ok {
		return nil, fmt.Errorf("no global %q in the object%s", name, constantNames(spec))
	}
	if !v.Constant() {
		return nil, fmt.Errorf("%s is a variable in %s, not a constant: constants are volatile const globals, in .rodata", name, v.SectionName)
	}
	if v.Type == nil {
		return nil, fmt.Errorf("%s has no BTF type: build the object with -g", name)
	}
	typ := btf.UnderlyingType(v.Type.Type)
	order := spec.ByteOrder
	if order == nil {
		order = binary.LittleEndian
	}
	switch t := typ.(type) {
	case *btf.Int:
		if t.Encoding&btf.Bool != 0 {
			b, err := strconv.ParseBool(value)
			if err != nil || (value != "true" && value != "false") {
				return nil, fmt.Errorf("%s is a bool: expected true or false, got %q", name, value)
			}
			out := make([]byte, t.Size)
			if b {
				out[orderIndex(order, 0, int(t.Size))] = 1
			}
			return out, nil
		}
		return intBytes(name, typeName(t), value, int(t.Size), t.Encoding&btf.Signed != 0, order)
	case *btf.Enum:
		for _, ev := range t.Values {
			if ev.Name == value {
				value = strconv.FormatUint(ev.Value, 10)
				if t.Signed {
					value = strconv.FormatInt(int64(ev.Value), 10)
				}
				break
			}
		}
		b, err := intBytes(name, "enum "+t.Name, value, int(t.Size), t.Signed, order)
		if err != nil && len(t.Values) > 0 {
			names := make([]string, 0, len(t.Values))
			for _, ev := range t.Values {
				names = append(names, ev.Name)
			}
			return nil, fmt.Errorf("%w, or one of %s", err, strings.Join(names, ", "))
		}
		return b, err
	}
	return nil, fmt.Errorf("%s is %s: only integers, bools and enums can be set", name, describe(v.Type.Type))
}

// intBytes encodes value as an integer of size bytes.
func intBytes(name, typ, value string, size int, signed bool, order binary.ByteOrder) ([]byte, error) {
	if size < 1 || size > 8 {
		return nil, fmt.Errorf("%s is a %d-byte integer: only 1 to 8 bytes can be set", name, size)
	}
	bits := uint(size * 8)
	n, ok := new(big.Int).SetString(strings.ReplaceAll(value, "_", ""), 0)
	var lo, hi *big.Int
	if signed {
		lo = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), bits-1))
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
	} else {
		lo = big.NewInt(0)
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits), big.NewInt(1))
	}
	if !ok || n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
		return nil, fmt.Errorf("%s is %s: expected an integer from %s to %s, got %q", name, typ, lo, hi, value)
	}
	var u uint64
	if n.Sign() < 0 {
		u = uint64(n.Int64()) // two's complement
	} else {
		u = n.Uint64()
	}
	if bits < 64 {
		u &= math.MaxUint64 >> (64 - bits)
	}
	out := make([]byte, 8)
	order.PutUint64(out, u)
	if order.String() == binary.BigEndian.String() {
		return out[8-size:], nil
	}
	return out[:size], nil
}

// orderIndex is the index of byte i (0: least significant) of a size-byte
// integer in order.
func orderIndex(order binary.ByteOrder, i, size int) int {
	if order.String() == binary.BigEndian.String() {
		return size - 1 - i
	}
	return i
}

func typeName(t *btf.Int) string {
	sign := "an unsigned"
	if t.Encoding&btf.Signed != 0 {
		sign = "a signed"
	}
	if t.Name != "" {
		return fmt.Sprintf("%s %d-byte integer (%s)", sign, t.Size, t.Name)
	}
	return fmt.Sprintf("%s %d-byte integer", sign, t.Size)
}

func describe(t btf.Type) string {
	switch u := btf.UnderlyingType(t).(type) {
	case *btf.Array:
		return fmt.Sprintf("an array of %d", u.Nelems)
	case *btf.Struct:
		return "struct " + u.Name
	case *btf.Union:
		return "union " + u.Name
	case *btf.Pointer:
		return "a pointer"
	case *btf.Float:
		return "a float"
	}
	return fmt.Sprintf("%v", t)
}

// constantNames lists the constants of spec for an error message.
func constantNames(spec *ebpf.CollectionSpec) string {
	var names []string
	for n, v := range spec.Variables {
		if v.Constant() {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return " (it has no constants)"
	}
	slices.Sort(names)
	return "; its constants: " + strings.Join(names, ", ")
}
