package guest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmrunner/vmrunner/protocol"
)

// Text relayed from the workload runner to the console never holds the
// start of a frame, however the writes cut it, and is otherwise passed on
// as it is.
func TestFrameDefuser(t *testing.T) {
	in := "beyla: level=info msg=start\n" + protocol.FramePrefix + "12 00000000 AAAA\nmid" + protocol.FramePartPrefix + "QUFB\n=vmrunner tail="
	for _, size := range []int{1, 3, 7, len(in)} {
		var out bytes.Buffer
		d := &frameDefuser{w: &out}
		for i := 0; i < len(in); i += size {
			if _, err := d.Write([]byte(in[i:min(i+size, len(in))])); err != nil {
				t.Fatal(err)
			}
		}
		d.flush()
		want := strings.ReplaceAll(in, "=vmrunner1", "-vmrunner1")
		if out.String() != want {
			t.Errorf("writes of %d bytes: %q, want %q", size, out.String(), want)
		}
	}
}
