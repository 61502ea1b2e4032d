package workload

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL server is minimal: it speaks the real wire protocol
// (pgproto3 encodes and decodes every message) but its "database" is one
// imaginary table, items(id int4, name text). It accepts any user without
// a password, answers simple Query messages and the extended protocol
// (Parse, Bind, Describe, Execute, Sync) that pgx sends, and returns a
// plausible row description and one row for a SELECT and a command tag for
// anything else. No library implements the server side of the protocol;
// pgproto3 gives the messages, the rest is here.

const (
	oidInt4 = 23
	oidText = 25
)

// servePG serves the protocol on ln until the returned stop is called.
func servePG(ln net.Listener, wg *sync.WaitGroup) func() error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				_ = pgSession(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	return func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		return err
	}
}

type pgPortal struct {
	query        string
	params       [][]byte
	paramFormats []int16
	formats      []int16
}

// pgInt decodes the first parameter, an int4 in text or binary format.
func pgInt(v []byte, formats []int16) int64 {
	if pgFormat(formats, 0) == 1 && len(v) == 4 {
		return int64(int32(binary.BigEndian.Uint32(v)))
	}
	n, _ := strconv.ParseInt(string(v), 10, 32)
	return n
}

func pgSession(c net.Conn) error {
	be := pgproto3.NewBackend(c, c)
	for {
		m, err := be.ReceiveStartupMessage()
		if err != nil {
			return fmt.Errorf("receive startup message: %w", err)
		}
		if _, ok := m.(*pgproto3.SSLRequest); ok {
			if _, err := c.Write([]byte("N")); err != nil {
				return err
			}
			continue
		}
		if _, ok := m.(*pgproto3.StartupMessage); !ok {
			return fmt.Errorf("unexpected startup message %T", m)
		}
		break
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "16.0"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"standard_conforming_strings", "on"}, {"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"},
		{"integer_datetimes", "on"},
	} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		return err
	}

	statements := map[string]string{}
	portals := map[string]pgPortal{}
	for {
		m, err := be.Receive()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *pgproto3.Query:
			p := pgPortal{query: m.String}
			if cols := pgColumns(p.query); cols != nil {
				be.Send(&pgproto3.RowDescription{Fields: pgFields(cols, nil)})
			}
			pgExecute(be, p)
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if err := be.Flush(); err != nil {
				return err
			}
		case *pgproto3.Parse:
			statements[m.Name] = m.Query
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Bind:
			portals[m.DestinationPortal] = pgPortal{
				query: statements[m.PreparedStatement], params: m.Parameters,
				paramFormats: m.ParameterFormatCodes, formats: m.ResultFormatCodes,
			}
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Describe:
			var p pgPortal
			if m.ObjectType == 'S' {
				p.query = statements[m.Name]
				// The workload's parameters are all ids: int4,
				// what PostgreSQL infers from "id = $1".
				oids := make([]uint32, pgParamCount(p.query))
				for i := range oids {
					oids[i] = oidInt4
				}
				be.Send(&pgproto3.ParameterDescription{ParameterOIDs: oids})
			} else {
				p = portals[m.Name]
			}
			if cols := pgColumns(p.query); cols != nil {
				be.Send(&pgproto3.RowDescription{Fields: pgFields(cols, p.formats)})
			} else {
				be.Send(&pgproto3.NoData{})
			}
		case *pgproto3.Execute:
			pgExecute(be, portals[m.Portal])
		case *pgproto3.Sync:
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if err := be.Flush(); err != nil {
				return err
			}
		case *pgproto3.Flush:
			if err := be.Flush(); err != nil {
				return err
			}
		case *pgproto3.Close:
			be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Terminate:
			return nil
		default:
			be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "0A000", Message: fmt.Sprintf("%T is not supported", m)})
		}
	}
}

func pgVerb(query string) string {
	f := strings.Fields(query)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(f[0])
}

// pgColumns returns the columns a query returns: the items table's for a
// SELECT, none otherwise.
func pgColumns(query string) []string {
	if pgVerb(query) == "SELECT" {
		return []string{"id", "name"}
	}
	return nil
}

var pgParamRE = regexp.MustCompile(`\$([0-9]+)`)

func pgParamCount(query string) int {
	n := 0
	for _, m := range pgParamRE.FindAllStringSubmatch(query, -1) {
		i, _ := strconv.Atoi(m[1])
		n = max(n, i)
	}
	return n
}

// pgFormat is the result format of column i under Bind's format codes.
func pgFormat(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	if i < len(formats) {
		return formats[i]
	}
	return 0
}

func pgFields(cols []string, formats []int16) []pgproto3.FieldDescription {
	oids := []uint32{oidInt4, oidText}
	sizes := []int16{4, -1}
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		fields[i] = pgproto3.FieldDescription{
			Name: []byte(c), TableOID: 16384, TableAttributeNumber: uint16(i + 1),
			DataTypeOID: oids[i], DataTypeSize: sizes[i], TypeModifier: -1, Format: pgFormat(formats, i),
		}
	}
	return fields
}

var pgIDRE = regexp.MustCompile(`id = [(' ]*([0-9]+)`)

// pgExecute sends the rows and the command tag of p's query.
func pgExecute(be *pgproto3.Backend, p pgPortal) {
	switch verb := pgVerb(p.query); verb {
	case "SELECT":
		id := int64(1)
		if len(p.params) > 0 {
			id = pgInt(p.params[0], p.paramFormats)
		} else if m := pgIDRE.FindStringSubmatch(p.query); m != nil {
			id, _ = strconv.ParseInt(m[1], 10, 32)
		}
		idCol := []byte(strconv.FormatInt(id, 10))
		if pgFormat(p.formats, 0) == 1 {
			idCol = binary.BigEndian.AppendUint32(nil, uint32(id))
		}
		be.Send(&pgproto3.DataRow{Values: [][]byte{idCol, []byte("item-" + strconv.FormatInt(id, 10))}})
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
	case "INSERT":
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")})
	case "":
		be.Send(&pgproto3.EmptyQueryResponse{})
	default:
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte(verb + " 1")})
	}
}

// pgStatements are what the SQL load generator issues, by verb.
var pgStatements = []struct{ verb, sql string }{
	{"SELECT", "SELECT id, name FROM items WHERE id = $1"},
	{"INSERT", "INSERT INTO items (id, name) VALUES ($1, 'new')"},
	{"UPDATE", "UPDATE items SET name = 'renamed' WHERE id = $1"},
}

type pgClient struct{ pool *pgxpool.Pool }

func newPGClient(ctx context.Context, addr string, conns int) (*pgClient, error) {
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("postgres://workload@%s:%s/workload?sslmode=disable&pool_max_conns=%d", host, port, conns))
	if err != nil {
		return nil, fmt.Errorf("pgx config: %w", err)
	}
	// Exec mode sends Parse, Bind, Describe, Execute and Sync for every
	// query (no statement cache), so each query carries its SQL.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	// No pings before handing out an idle connection: they would be
	// traffic the load generator did not count.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgx connect: %w", err)
	}
	return &pgClient{pool: pool}, nil
}

// do issues one statement chosen by rng, through the simple protocol on
// even n and the extended protocol on odd n, and counts "VERB simple" or
// "VERB extended".
func (p *pgClient) do(ctx context.Context, n int, rng *rand.Rand, t *tally) error {
	st := pgStatements[rng.IntN(len(pgStatements))]
	mode, how := pgx.QueryExecModeExec, "extended"
	if n%2 == 0 {
		mode, how = pgx.QueryExecModeSimpleProtocol, "simple"
	}
	id := int32(1 + n%1000)
	start := time.Now()
	if st.verb == "SELECT" {
		var (
			gotID int32
			name  string
		)
		if err := p.pool.QueryRow(ctx, st.sql, mode, id).Scan(&gotID, &name); err != nil {
			return fmt.Errorf("sql %s: %w", st.verb, err)
		}
		if gotID != id {
			return fmt.Errorf("sql SELECT: got id %d, want %d", gotID, id)
		}
	} else {
		tag, err := p.pool.Exec(ctx, st.sql, mode, id)
		if err != nil {
			return fmt.Errorf("sql %s: %w", st.verb, err)
		}
		if !strings.HasPrefix(tag.String(), st.verb) {
			return fmt.Errorf("sql %s: command tag %q", st.verb, tag)
		}
	}
	t.ok(time.Since(start), st.verb+" "+how)
	return nil
}

func (p *pgClient) close() error {
	p.pool.Close()
	return nil
}
