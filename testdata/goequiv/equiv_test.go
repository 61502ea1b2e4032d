package goequiv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPass(t *testing.T) { t.Log("a line of output") }

func TestFail(t *testing.T) { t.Error("want 3, got 4") }

func TestSkip(t *testing.T) { t.Skip("not on this kernel") }

func TestTestdata(t *testing.T) {
	b, err := os.ReadFile("testdata/greeting.txt")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != "hello from testdata" {
		t.Fatalf("testdata/greeting.txt holds %q", b)
	}
}

func TestSubtests(t *testing.T) {
	t.Run("pass", func(t *testing.T) {})
	t.Run("with space", func(t *testing.T) { t.Fatal("subtest failed") })
	t.Run("skip", func(t *testing.T) { t.Skip("skipped subtest") })
	t.Run("nested", func(t *testing.T) {
		t.Run("deeper", func(t *testing.T) { fmt.Println("printed without t.Log") })
	})
}

func TestParallel(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			time.Sleep(10 * time.Millisecond)
			if name == "b" {
				t.Error("b fails")
			}
		})
	}
}

func TestPanic(t *testing.T) {
	if os.Getenv("GOEQUIV_PANIC") == "" {
		t.Skip("GOEQUIV_PANIC not set")
	}
	t.Run("inner", func(t *testing.T) { panic("boom") })
}

func TestHang(t *testing.T) {
	if os.Getenv("GOEQUIV_HANG") == "" {
		t.Skip("GOEQUIV_HANG not set")
	}
	time.Sleep(time.Hour)
}

func TestAfter(t *testing.T) {}
