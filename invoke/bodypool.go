package invoke

import (
	"math/bits"
	"sync"
)

// Response bodies of up to maxPooledBody bytes are read into recycled
// buffers, by power-of-two size class from minPooledBody: a busy worker
// would otherwise allocate one (and collect it soon after) per invocation.
const (
	minPooledBodyShift = 10 // 1 KiB
	maxPooledBodyShift = 20 // 1 MiB
	maxPooledBody      = 1 << maxPooledBodyShift
)

type bodyPool struct {
	classes [maxPooledBodyShift - minPooledBodyShift + 1]sync.Pool // of *[]byte
}

// class is the index of the smallest class holding n bytes (n <= maxPooledBody).
func class(n int) int {
	if n <= 1<<minPooledBodyShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledBodyShift
}

// get returns a buffer of length n, and the handle to give back to put;
// a nil handle for bodies too large to pool.
func (p *bodyPool) get(n int) ([]byte, *[]byte) {
	if n > maxPooledBody {
		return make([]byte, n), nil
	}
	c := class(n)
	if v, ok := p.classes[c].Get().(*[]byte); ok {
		return (*v)[:n], v
	}
	b := make([]byte, n, 1<<(c+minPooledBodyShift))
	return b, &b
}

func (p *bodyPool) put(h *[]byte) {
	if h == nil {
		return
	}
	p.classes[class(cap(*h))].Put(h)
}
