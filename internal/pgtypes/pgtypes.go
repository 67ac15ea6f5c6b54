// Package pgtypes teaches a pgx connection the data types of its database
// that pgx does not know by itself: every enum type and its array type, so
// that sqlc's enum types and slices of them (`[]dbgen.OrderStatus`) encode
// and decode with no code in the application. provider and dbtest run
// [Register] on every new connection of the pools they build.
package pgtypes

import (
	"context"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// enumsSQL lists every enum type of the database with its array type, as
// pgx's Conn.LoadTypes would describe them (a type under its own name and
// schema-qualified), in one query with no parameters.
const enumsSQL = `SELECT t.oid, t.typname, n.nspname, a.oid, a.typname, a.typdelim
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
JOIN pg_catalog.pg_type a ON a.oid = t.typarray
WHERE t.typtype = 'e'
ORDER BY n.nspname, t.typname`

// Register registers every enum type of conn's database and its array type in
// conn's type map: each under its name and its schema-qualified name
// ("order_status" and "public.order_status", "_order_status" and
// "public._order_status"), with pgx's enum and array codecs, the types
// Conn.LoadTypes would build for them.
//
// It costs one round trip: one catalog query sent with the simple protocol,
// whatever the connection's exec mode (so it also works behind PgBouncer in
// transaction mode, and prepares nothing). Use it as an AfterConnect hook.
// A type created later is seen by connections opened later: call Reset on a
// long-lived pgxpool.Pool to replace its connections.
func Register(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, enumsSQL, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("load enum types: %w", err)
	}
	defer rows.Close()
	type enum struct {
		oid, arrayOID         uint32
		name, schema, arrName string
		delim                 string
	}
	var enums []enum
	for rows.Next() {
		var e enum
		if err := rows.Scan(&e.oid, &e.name, &e.schema, &e.arrayOID, &e.arrName, &e.delim); err != nil {
			return fmt.Errorf("load enum types: %w", err)
		}
		enums = append(enums, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load enum types: %w", err)
	}
	m := conn.TypeMap()
	m.TryWrapEncodePlanFuncs = append(m.TryWrapEncodePlanFuncs, tryWrapStringKindSlice)
	for _, e := range enums {
		elem := &pgtype.Type{Name: e.name, OID: e.oid, Codec: &pgtype.EnumCodec{}}
		arr := &pgtype.Type{Name: e.arrName, OID: e.arrayOID, Codec: &pgtype.ArrayCodec{ElementType: elem, Delimiter: delimiter(e.delim)}}
		for _, t := range []*pgtype.Type{elem, arr} {
			m.RegisterType(t)
			m.RegisterType(&pgtype.Type{Name: e.schema + "." + t.Name, OID: t.OID, Codec: t.Codec})
		}
	}
	return nil
}

// tryWrapStringKindSlice encodes a slice of a string type of the
// application ([]dbgen.OrderStatus) as a []string when pgx found no other
// plan for it. It matters when the parameter's type is not known to pgx: in
// the exec and simple_protocol exec modes pgx sends parameters as OID 0
// (unknown) and encodes them by their Go type, which knows []string but not
// []OrderStatus; the server then reads the text array literal as the type
// the statement needs (status[]). pgx tries it last, after its own plans.
func tryWrapStringKindSlice(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	t := reflect.TypeOf(value)
	if t == nil || t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.String || t == stringsType {
		return nil, nil, false
	}
	return &stringKindSlicePlan{}, toStrings(value), true
}

var stringsType = reflect.TypeFor[[]string]()

// stringKindSlicePlan is the plan tryWrapStringKindSlice makes.
type stringKindSlicePlan struct{ next pgtype.EncodePlan }

func (p *stringKindSlicePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *stringKindSlicePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(toStrings(value), buf)
}

// toStrings copies a slice of a string kind into a []string; a nil slice
// stays nil (NULL).
func toStrings(value any) []string {
	v := reflect.ValueOf(value)
	if v.IsNil() {
		return nil
	}
	out := make([]string, v.Len())
	for i := range out {
		out[i] = v.Index(i).String()
	}
	return out
}

// delimiter is the array delimiter pg_type.typdelim names (a comma for
// every enum, but read rather than assumed).
func delimiter(s string) byte {
	if len(s) == 1 {
		return s[0]
	}
	return ','
}
