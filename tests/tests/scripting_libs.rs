//! Differential tests of the `cjson`, `cmsgpack` and `struct` script
//! libraries against a real redis-server: Redis' own scripting.tcl cases,
//! then encodings of every shape and size class, configuration functions,
//! depth limits and the exact error messages of malformed input. Binary
//! msgpack and struct output comes back as a bulk string so bytes are
//! compared exactly.

use memlog_tests::Differential;

/// Runs `script` with EVAL (no keys) on both servers; replies must match.
fn ev(d: &mut Differential, script: &str) {
    d.check(&["EVAL", script, "0"]);
}

/// Runs each expression as `return <expr>` on both servers.
fn ret_all(d: &mut Differential, exprs: &[&str]) {
    for e in exprs {
        ev(d, &format!("return {e}"));
    }
}

/// Runs each expression under pcall and returns {ok, result-or-error},
/// so error messages are compared as strings.
fn pcall_all(d: &mut Differential, exprs: &[&str]) {
    for e in exprs {
        ev(
            d,
            &format!("local ok, r = pcall(function() return {e} end) return {{tostring(ok), r}}"),
        );
    }
}

#[test]
fn scripting_tcl_cjson_cases() {
    let mut d = Differential::start().expect("servers start");
    ev(
        &mut d,
        r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#,
    );
    ev(
        &mut d,
        r#"local decoded = cjson.decode('{"keya": "a", "keyb": "b"}')
           return {decoded.keya, decoded.keyb}"#,
    );
    ev(
        &mut d,
        r#"
        local some_map = {s1="Some string", n1=100, a1={"Some","String","Array"},
                          nil1=nil, b1=true, b2=false}
        local encoded = cjson.encode(some_map)
        local decoded = cjson.decode(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        cjson.encode_keep_buffer(false)
        encoded = cjson.encode(some_map)
        decoded = cjson.decode(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        local table1 = {one="one", [1]="one"}
        encoded = cjson.encode(table1)
        decoded = cjson.decode(encoded)
        assert(decoded["one"] == table1["one"])
        assert(decoded["1"] == table1[1])
        local array1 = {[1]="one", [2]="two"}
        encoded = cjson.encode(array1)
        decoded = cjson.decode(encoded)
        assert(table.concat(array1) == table.concat(decoded))
        local invalid_map = {}
        invalid_map[false] = "false"
        local ok, encoded = pcall(cjson.encode, invalid_map)
        assert(ok == false)
        cjson.encode_max_depth(1)
        ok, encoded = pcall(cjson.encode, some_map)
        assert(ok == false)
        cjson.decode_max_depth(1)
        ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
        assert(ok == false)
        ok, encoded = pcall(cjson.encode, {num1=0/0})
        assert(ok == false)
        cjson.encode_invalid_numbers(true)
        ok, encoded = pcall(cjson.encode, {num1=0/0})
        assert(ok == true)
        cjson.decode_max_depth(1000)
        cjson.encode_max_depth(1000)
        cjson.encode_invalid_numbers(false)
        cjson.encode_keep_buffer(true)
        return encoded
        "#,
    );
    ev(&mut d, "cjson.encode = function() return 1 end");
    ev(&mut d, "cmsgpack.pack = function() return 1 end");
    ev(&mut d, "cjson.newkey = 1");
    ev(&mut d, "rawset(cjson, 'encode', 1)");
    ev(&mut d, "setmetatable(cmsgpack, {})");
}

#[test]
fn cjson_encode_shapes() {
    let mut d = Differential::start().expect("servers start");
    ret_all(
        &mut d,
        &[
            "cjson.encode({1, 2, 3})",
            "cjson.encode({})",
            "cjson.encode({a = 1})",
            "cjson.encode({a = {b = {c = {1, {d = 'x'}}}}})",
            "cjson.encode({x = 1, y = 2, z = 3, [1] = 'one', [2.5] = 'f', ['10'] = 's'})",
            "cjson.encode({[1] = 'a', [3] = 'c'})",
            "cjson.encode({[1] = 'a', [10] = 'j'})",
            "cjson.encode({[0] = 'zero'})",
            "cjson.encode({[-1] = 'neg', [1] = 'one'})",
            "cjson.encode({[1e10] = 'big'})",
            "cjson.encode({nil, nil, 3})",
            "cjson.encode({1, nil, 3, nil, 5})",
            "cjson.encode({true, false, cjson.null})",
            "cjson.encode(cjson.null)",
            "cjson.encode(nil)",
            "cjson.encode(true)",
            "cjson.encode('plain')",
            "cjson.encode('a/b\"c\\\\d\\n\\r\\t\\b\\f\\0\\1\\31\\127 é ☃')",
            "cjson.encode(string.char(0, 1, 2, 30, 31, 32, 126, 127, 128, 255))",
            "cjson.encode({['k/\"'] = 'v'})",
            "cjson.encode(0)",
            "cjson.encode(-0)",
            "cjson.encode(0.1)",
            "cjson.encode(-1.5)",
            "cjson.encode(1e300)",
            "cjson.encode(1e-300)",
            "cjson.encode(2^53)",
            "cjson.encode(2^63)",
            "cjson.encode(123456789012345)",
            "cjson.encode(12345678901234)",
            "cjson.encode(1/3)",
            "cjson.encode(0.0001)",
            "cjson.encode(0.00001)",
            "cjson.encode({[1.5] = 1, [2] = 2})",
            "cjson.encode({[0.1] = 'x'})",
            "cjson.encode({{{{{{{{{{1}}}}}}}}}})",
            "cjson.encode({1, 'two', {three = 3}, {4, {5}}})",
            "type(cjson.null)",
            "tostring(cjson.null == cjson.decode('null'))",
            "cjson._NAME .. ' ' .. cjson._VERSION",
            "cmsgpack._NAME .. ' ' .. cmsgpack._VERSION .. ' ' .. cmsgpack._COPYRIGHT .. ' ' .. cmsgpack._DESCRIPTION",
        ],
    );
    // Key order follows lua_next, as in Redis.
    ev(
        &mut d,
        "local t = {} for i = 1, 50 do t['key' .. i] = i end return cjson.encode(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 30 do t[i] = i * 1.5 end t.x = 'y' return cjson.encode(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 100 do t[i] = i end return cjson.encode(t)",
    );
    ev(
        &mut d,
        "local t = {} t[1] = 1 t[2] = 2 t[1000] = 3 return {pcall(cjson.encode, t)}",
    );
}

#[test]
fn cjson_encode_errors_and_config() {
    let mut d = Differential::start().expect("servers start");
    pcall_all(
        &mut d,
        &[
            "cjson.encode({[true] = 1})",
            "cjson.encode({[{}] = 1})",
            "cjson.encode(function() end)",
            "cjson.encode({f = print})",
            "cjson.encode(0/0)",
            "cjson.encode(1/0)",
            "cjson.encode(-1/0)",
            "cjson.encode({[1/0] = 1})",
            "cjson.encode({[1] = 1, [100] = 2})",
            "cjson.encode()",
            "cjson.encode(1, 2)",
            "cjson.decode()",
            "cjson.decode({})",
            "cjson.decode(1, 2)",
            "cjson.encode_max_depth(0)",
            "cjson.encode_max_depth('x')",
            "cjson.encode_max_depth(1, 2)",
            "cjson.encode_number_precision(15)",
            "cjson.encode_invalid_numbers('maybe')",
            "cjson.encode_sparse_array(true, -1)",
        ],
    );
    ev(
        &mut d,
        "local a = {} a.self = a return {pcall(cjson.encode, a)}",
    );
    ev(
        &mut d,
        "local a = {} a[1] = a return {pcall(cjson.encode, a)}",
    );
    ev(
        &mut d,
        r#"local r = {}
        local function add(...) for _, v in ipairs({...}) do r[#r + 1] = tostring(v) end end
        add(cjson.encode_max_depth())
        add(cjson.decode_max_depth())
        add(cjson.encode_number_precision())
        add(cjson.encode_keep_buffer())
        add(cjson.encode_invalid_numbers())
        add(cjson.decode_invalid_numbers())
        add(cjson.encode_sparse_array())
        add(cjson.encode_number_precision(3))
        add(cjson.encode(math.pi), cjson.encode(1023.25), cjson.encode(123456))
        add(cjson.encode_number_precision(14))
        add(cjson.encode_invalid_numbers(true))
        add(cjson.encode({1/0, -1/0, 0/0}))
        add(cjson.encode_invalid_numbers('null'))
        add(cjson.encode({1/0, -1/0, 0/0}))
        add(cjson.encode_invalid_numbers('off'))
        add(cjson.encode_sparse_array(true))
        add(cjson.encode({[1] = 1, [100] = 2}))
        add(cjson.encode_sparse_array(false, 0))
        add(cjson.encode({[1] = 1, [20] = 2}))
        add(cjson.encode_sparse_array(false, 2, 10))
        add(cjson.encode_max_depth(3))
        add(pcall(cjson.encode, {{{1}}}))
        add(pcall(cjson.encode, {{{{1}}}}))
        add(cjson.encode_max_depth(1000))
        add(cjson.decode_max_depth(2))
        add(select('#', pcall(cjson.decode, '[[1]]')))
        add(pcall(cjson.decode, '[[[1]]]'))
        add(pcall(cjson.decode, '{"a":{"b":{}}}'))
        add(cjson.decode_max_depth(1000))
        add(cjson.decode_invalid_numbers(false))
        add(pcall(cjson.decode, '0x10'))
        add(pcall(cjson.decode, 'NaN'))
        add(pcall(cjson.decode, '+1'))
        add(pcall(cjson.decode, '01'))
        add(cjson.decode_invalid_numbers(true))
        add(cjson.decode('0x10'), cjson.decode('+1'), cjson.decode('01'), cjson.decode('-Infinity'))
        add(cjson.encode_keep_buffer(false), cjson.encode_keep_buffer(true))
        local c2 = cjson.new()
        add(c2.encode_max_depth(5), cjson.encode_max_depth())
        add(c2.encode({1, {2}}), c2.null == cjson.null)
        return r"#,
    );
    // Deep structures: the default limit of 1000.
    ev(
        &mut d,
        "local t = {} local c = t for i = 1, 999 do c[1] = {} c = c[1] end return {pcall(cjson.encode, t)}",
    );
    ev(
        &mut d,
        "local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end return {pcall(cjson.encode, t)}",
    );
    ev(
        &mut d,
        "local ok, r = pcall(cjson.decode, string.rep('[', 1000) .. string.rep(']', 1000)) return {tostring(ok), type(r)}",
    );
    ev(
        &mut d,
        "local ok, r = pcall(cjson.decode, string.rep('[', 1001) .. string.rep(']', 1001)) return {tostring(ok), r}",
    );
    ev(
        &mut d,
        "local ok, r = pcall(cjson.decode, string.rep('{\"a\":', 1001) .. '1' .. string.rep('}', 1001)) return {tostring(ok), r}",
    );
    // Uncaught: the error reply itself.
    ev(&mut d, "return cjson.decode('{')");
    ev(&mut d, "return cjson.encode({[true] = 1})");
    ev(&mut d, "local x = 1\nreturn cjson.decode('[1,]')");
}

#[test]
fn cjson_decode_values_and_errors() {
    let mut d = Differential::start().expect("servers start");
    ret_all(
        &mut d,
        &[
            r#"cjson.encode(cjson.decode('{"a":[1,2,{"b":null}],"c":"d"}'))"#,
            r#"cjson.encode(cjson.decode('[1, 2.5, -3e2, 1E+2, 0, -0, 1e400, true, false, null, "x"]'))"#,
            r#"cjson.decode('"\\u00e9\\u2603\\ud83d\\ude00\\n\\t\\"\\/\\\\\\b\\f\\r"')"#,
            r#"cjson.decode('"\\u0000x"')"#,
            r#"cjson.decode('  "spaced"  ')"#,
            r#"tostring(cjson.decode('12.5'))"#,
            r#"tostring(cjson.decode('1e300'))"#,
            r#"tostring(cjson.decode('-0'))"#,
            r#"tostring(cjson.decode('123456789012345678'))"#,
            r#"tostring(cjson.decode('0.1'))"#,
            r#"tostring(cjson.decode('nan'))"#,
            r#"tostring(cjson.decode('Infinity'))"#,
            r#"tostring(cjson.decode('-inf'))"#,
            r#"tostring(cjson.decode('0x1p4'))"#,
            r#"tostring(cjson.decode(42))"#,
            r#"#cjson.decode('[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]')"#,
            r#"cjson.decode('[[[["deep"]]]]')[1][1][1][1]"#,
            r#"cjson.decode('{"a":1,"a":2}').a"#,
            r#"cjson.encode(cjson.decode('{"1":"x","2":"y"}'))"#,
            r#"cjson.encode(cjson.decode('{}'))"#,
            r#"cjson.encode(cjson.decode('[]'))"#,
        ],
    );
    pcall_all(
        &mut d,
        &[
            r#"cjson.decode('')"#,
            r#"cjson.decode('{')"#,
            r#"cjson.decode('}')"#,
            r#"cjson.decode('[1,]')"#,
            r#"cjson.decode('[1 2]')"#,
            r#"cjson.decode('{"a" 1}')"#,
            r#"cjson.decode('{"a":1,}')"#,
            r#"cjson.decode('{1:2}')"#,
            r#"cjson.decode('{"a":1 "b":2}')"#,
            r#"cjson.decode('[1] x')"#,
            r#"cjson.decode('[1]]')"#,
            r#"cjson.decode('tru')"#,
            r#"cjson.decode('nul')"#,
            r#"cjson.decode('nil')"#,
            r#"cjson.decode('"abc')"#,
            r#"cjson.decode('"a\\qb"')"#,
            r#"cjson.decode('"\\u12"')"#,
            r#"cjson.decode('"\\udc00"')"#,
            r#"cjson.decode('"\\ud800x"')"#,
            r#"cjson.decode('"\\ud800\\u0041"')"#,
            r#"cjson.decode('-')"#,
            r#"cjson.decode('1e')"#,
            r#"cjson.decode('.5')"#,
            r#"cjson.decode('@')"#,
            r#"cjson.decode('[1, @]')"#,
            r#"cjson.decode('\0\0')"#,
            r#"cjson.decode('a\0')"#,
            r#"cjson.decode('[1]\0garbage')"#,
            r#"cjson.decode('"a\0b"')"#,
            r#"cjson.decode('{"a":[1,2,3}')"#,
            r#"cjson.decode('\t\n\r [true , false ,null] ')[2]"#,
        ],
    );
}

#[test]
fn scripting_tcl_cmsgpack_cases() {
    let mut d = Differential::start().expect("servers start");
    let hex = r#"local h = "" for i = 1, #encoded do h = h .. string.format("%02x", string.byte(encoded, i)) end return h"#;
    ev(&mut d, &format!("local encoded = cmsgpack.pack(0.1) {hex}"));
    ev(
        &mut d,
        &format!("local encoded = cmsgpack.pack(-1099511627776) {hex}"),
    );
    ev(
        &mut d,
        r#"
        local str_lt_32 = string.rep("x", 30)
        local str_lt_255 = string.rep("x", 250)
        local str_lt_65535 = string.rep("x", 65530)
        local str_long = string.rep("x", 100000)
        local array_lt_15 = {1, 2, 3, 4, 5}
        local array_lt_65535 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
        local array_big = {}
        for i=1, 100000 do array_big[i] = i end
        local map_lt_15 = {a=1, b=2}
        local map_big = {}
        for i=1, 100000 do map_big[tostring(i)] = i end
        local some_map = {s1=str_lt_32, s2=str_lt_255, s3=str_lt_65535, s4=str_long,
            d1=0.1, i1=1, i2=250, i3=65530, i4=100000, i5=2^40, i6=-1, i7=-120,
            i8=-32000, i9=-100000, i10=-3147483648, a1=array_lt_15, a2=array_lt_65535,
            a3=array_big, m1=map_lt_15, m2=map_big, b1=false, b2=true, n=nil}
        local encoded = cmsgpack.pack(some_map)
        local decoded = cmsgpack.unpack(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
        assert(table.concat(some_map) == table.concat(decoded_one))
        assert(offset == -1)
        local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
        local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
        assert(obj == str_lt_32)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_lt_255)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_lt_65535)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_long)
        assert(offset == -1)
        return {#encoded, redis.sha1hex(encoded)}
        "#,
    );
    ev(
        &mut d,
        &format!(
            r#"local a = {{x=nil,y=5}}
            local b = {{x=a}}
            a['x'] = b
            local encoded = cmsgpack.pack(a)
            local re = cmsgpack.unpack(encoded)
            assert(re)
            assert(re.x)
            assert(re.x.x.y == re.y)
            assert(re.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
            assert(type(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x) == 'nil')
            {hex}"#
        ),
    );
}

#[test]
fn cmsgpack_pack_sizes() {
    let mut d = Differential::start().expect("servers start");
    let exprs = [
        "cmsgpack.pack(string.rep('a', 31))",
        "cmsgpack.pack(string.rep('a', 32))",
        "cmsgpack.pack(string.rep('a', 255))",
        "cmsgpack.pack(string.rep('a', 256))",
        "cmsgpack.pack(string.rep('a', 65535))",
        "cmsgpack.pack(string.rep('a', 65536))",
        "cmsgpack.pack('')",
        "cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2^53, 2^62)",
        "cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -2^53, -2^63)",
        "cmsgpack.pack(2^63, 2^64, -2^64, 1e300, -1e300)",
        "cmsgpack.pack(0.5, -0.25, 0.1, 1/3, 1.5e10 + 0.5, 3.4028234663852886e38)",
        "cmsgpack.pack(1/0, -1/0, 0/0, -0)",
        "cmsgpack.pack(true, false, nil)",
        "cmsgpack.pack(print)",
        "cmsgpack.pack(cjson.null)",
        "cmsgpack.pack({})",
        "cmsgpack.pack({1, 2, 3})",
        "cmsgpack.pack({1, nil, 3})",
        "cmsgpack.pack({[1] = 1, [3] = 3})",
        "cmsgpack.pack({[0] = 'z'})",
        "cmsgpack.pack({[1.5] = 'f'})",
        "cmsgpack.pack({a = 1, b = {c = {d = {1, 2, {e = 'f'}}}}})",
        "cmsgpack.pack({x = true, [1] = 'one', [2] = false})",
        "cmsgpack.pack({[true] = 1, [false] = 0})",
        "cmsgpack.pack({[{}] = 1})",
    ];
    ret_all(&mut d, &exprs);
    ev(
        &mut d,
        "local t = {} for i = 1, 15 do t[i] = i end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 16 do t[i] = i end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 65535 do t[i] = i % 7 end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 65536 do t[i] = i % 7 end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 15 do t['k' .. i] = i end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 16 do t['k' .. i] = i end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} for i = 1, 70000 do t['k' .. i] = i end return redis.sha1hex(cmsgpack.pack(t))",
    );
    ev(
        &mut d,
        "local t = {} local c = t for i = 1, 20 do c.n = {} c.v = i c = c.n end return cmsgpack.pack(t)",
    );
    ev(
        &mut d,
        "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)",
    );
    pcall_all(&mut d, &["cmsgpack.pack()"]);
}

#[test]
fn cmsgpack_unpack() {
    let mut d = Differential::start().expect("servers start");
    let round = [
        "{cmsgpack.unpack(cmsgpack.pack(1, 'two', {3, 4}, {five = 5}, true, false))}",
        "cjson.encode({cmsgpack.unpack(cmsgpack.pack(0.5, 0.1, -1, -200, 70000, -70000, 2^40, -2^40, 2^53))})",
        "cjson.encode({cmsgpack.unpack(cmsgpack.pack({a = {b = {c = {1, 2, 3}}}, d = 'e'}))})",
        "select('#', cmsgpack.unpack(cmsgpack.pack(nil, nil, 1)))",
        "tostring(cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255'))",
        "tostring(cmsgpack.unpack('\\207\\127\\255\\255\\255\\255\\255\\255\\255'))",
        "tostring(cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\0'))",
        "tostring(cmsgpack.unpack('\\202\\63\\192\\0\\0'))",
        "tostring(cmsgpack.unpack('\\255'))",
        "tostring(cmsgpack.unpack('\\224'))",
        "cjson.encode({cmsgpack.unpack('\\208\\128\\209\\128\\0\\210\\128\\0\\0\\0\\204\\255\\205\\255\\255\\206\\255\\255\\255\\255')})",
        "cjson.encode(cmsgpack.unpack('\\130\\1\\2\\161a\\192'))",
        "cjson.encode(cmsgpack.unpack('\\220\\0\\2\\1\\2'))",
        "cjson.encode(cmsgpack.unpack('\\221\\0\\0\\0\\1\\1'))",
        "cjson.encode(cmsgpack.unpack('\\222\\0\\1\\161a\\1'))",
        "cjson.encode(cmsgpack.unpack('\\223\\0\\0\\0\\1\\161a\\1'))",
        "cmsgpack.unpack('\\217\\3abc')",
        "cmsgpack.unpack('\\218\\0\\3abc')",
        "cmsgpack.unpack('\\219\\0\\0\\0\\3abc')",
        "#cmsgpack.unpack(cmsgpack.pack(string.rep('z', 70000)))",
        "select('#', cmsgpack.unpack(''))",
        "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
        "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}",
        "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}",
        "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 3)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2, 2)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 10, 1)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 0, 0)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 0, 2)}",
        "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2), 1, '1')}",
        "{cmsgpack.unpack_one(cmsgpack.pack('a', 'b'), 1.9)}",
        "{cmsgpack.unpack_one(cmsgpack.pack('a', 'b'), nil)}",
        "{cmsgpack.unpack_one(12)}",
    ];
    ret_all(&mut d, &round);
    pcall_all(
        &mut d,
        &[
            "cmsgpack.unpack('\\193')",
            "cmsgpack.unpack('\\196\\1a')",
            "cmsgpack.unpack('\\212\\1\\1')",
            "cmsgpack.unpack('\\1\\199')",
            "cmsgpack.unpack('\\204')",
            "cmsgpack.unpack('\\205\\1')",
            "cmsgpack.unpack('\\206\\1\\2\\3')",
            "cmsgpack.unpack('\\207\\1')",
            "cmsgpack.unpack('\\211\\1\\2')",
            "cmsgpack.unpack('\\202\\1')",
            "cmsgpack.unpack('\\203\\1\\2\\3')",
            "cmsgpack.unpack('\\165abc')",
            "cmsgpack.unpack('\\217\\10abc')",
            "cmsgpack.unpack('\\218\\0')",
            "cmsgpack.unpack('\\219\\0\\0\\1\\0abc')",
            "cmsgpack.unpack('\\147\\1\\2')",
            "cmsgpack.unpack('\\130\\1')",
            "cmsgpack.unpack('\\220\\0')",
            "cmsgpack.unpack('\\222\\0\\5\\1')",
            "cmsgpack.unpack('\\129\\192\\1')",
            "cmsgpack.unpack_one(cmsgpack.pack(1), -1)",
            "cmsgpack.unpack_one(cmsgpack.pack(1), 5)",
            "cmsgpack.unpack_limit(cmsgpack.pack(1), -1)",
            "cmsgpack.unpack_limit(cmsgpack.pack(1))",
            "cmsgpack.unpack_one(cmsgpack.pack(1), 'x')",
            "cmsgpack.unpack()",
            "cmsgpack.unpack({})",
            "cmsgpack.unpack_one()",
            "select('#', cmsgpack.unpack(string.rep('\\1', 7990)))",
            "select('#', cmsgpack.unpack(string.rep('\\1', 8010)))",
            "select('#', cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1'))",
        ],
    );
    // Uncaught: the error reply itself.
    ev(&mut d, "return cmsgpack.unpack('\\193')");
    ev(&mut d, "return cmsgpack.unpack('\\204')");
}

#[test]
fn deep_nesting_limits() {
    // Past the configured limits, where the C versions run out of Lua
    // stack (LUAI_MAXCSTACK): thousands of levels, the exact messages.
    let mut d = Differential::start().expect("servers start");
    ev(
        &mut d,
        r#"cjson.decode_max_depth(100000) cjson.encode_max_depth(100000)
        local a = {} a[1] = a local b = {} b.x = b
        local r = {}
        local function add(ok, e)
          r[#r + 1] = tostring(ok) .. ' ' .. (type(e) == 'table' and 'table' or tostring(e))
        end
        for _, n in ipairs({1000, 3998, 3999, 4000, 7990, 7998, 7999, 8000}) do
          add(pcall(cjson.decode, string.rep('[', n) .. string.rep(']', n)))
          add(pcall(cjson.decode, string.rep('{"a":', n) .. '1' .. string.rep('}', n)))
          add(pcall(cmsgpack.unpack, string.rep('\145', n) .. '\1'))
          add(pcall(cmsgpack.unpack, string.rep('\129\1', n) .. '\1'))
          add(pcall(cmsgpack.unpack_one, string.rep('\145', n) .. '\1'))
        end
        add(pcall(cjson.encode, a))
        add(pcall(cjson.encode, b))
        cjson.decode_max_depth(1000) cjson.encode_max_depth(1000)
        return r"#,
    );
}

/// Blocking commands run inside scripts but never block: they answer as
/// on a timeout, and XREAD/XREADGROUP refuse BLOCK with Redis' error.
#[test]
fn blocking_commands_inside_scripts_do_not_block() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    for script in [
        "return redis.pcall('xread','STREAMS','s','$')",
        "return redis.pcall('xread','BLOCK',0,'STREAMS','s','$')",
        "return redis.pcall('xreadgroup','group','g','c','STREAMS','s','>')",
        "return redis.pcall('xreadgroup','group','g','c','BLOCK',0,'STREAMS','s','>')",
        "return redis.pcall('blmpop',0,1,'nolist','LEFT')",
        "return redis.pcall('bzmpop',0,1,'nozset','MIN')",
        "return redis.pcall('blpop','nolist',0)",
    ] {
        d.check(&["EVAL", script, "1", "s"]);
    }
}

// ------------------------------------------------------------------ struct

/// A Lua function turning values into a table: numbers as `%.17g` (EVAL
/// would truncate them to integers), strings as they are, so every
/// result of `struct.unpack` is compared exactly.
const SHOW: &str = "local function show(...)
  local t = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    t[i] = type(v) == 'number' and string.format('%.17g', v) or v
  end
  return t
end
";

/// Runs each expression as `return show(<expr>)` on both servers.
fn show_all(d: &mut Differential, exprs: &[&str]) {
    for e in exprs {
        ev(d, &format!("{SHOW}return show({e})"));
    }
}

#[test]
fn struct_pack_every_option() {
    let mut d = Differential::start().expect("servers start");
    ret_all(
        &mut d,
        &[
            // Every integer letter, in both orders and the native one.
            "struct.pack('>bBhHlLTiI', -1, 255, -2, 65534, -3, 2^40 + 5, 12345, -4, 4000000000)",
            "struct.pack('<bBhHlLTiI', -1, 255, -2, 65534, -3, 2^40 + 5, 12345, -4, 4000000000)",
            "struct.pack('bBhHlLTiI', -1, 255, -2, 65534, -3, 2^40 + 5, 12345, -4, 4000000000)",
            "struct.pack('>i1i2i3i4i5i6i7i8', 1, -2, 3, -4, 5, -6, 7, -8)",
            "struct.pack('<I1I2I3I4I5I6I7I8', 1, 2, 3, 4, 5, 6, 7, 2^53)",
            // Wider than a long: zero bytes past the 8th, even for -1.
            "struct.pack('>i10', -1)",
            "struct.pack('<i10', -1)",
            "struct.pack('<i32>I32', -2, 2^60)",
            "struct.pack('>I16', 2^64 - 2^11)",
            "struct.pack('i0I0b', 5, 6, 7)",
            // Out of range and odd numbers convert as C does on x86-64.
            "struct.pack('<b', 300)",
            "struct.pack('<B', -1)",
            "struct.pack('<h', 1e10)",
            "struct.pack('<ii', 2.9, -2.9)",
            "struct.pack('<L', 2^63)",
            "struct.pack('<L', 2^63 + 4096)",
            "struct.pack('<L', 2^64)",
            "struct.pack('<L', 2^70)",
            "struct.pack('<l', -2^70)",
            "struct.pack('<L', 1/0)",
            "struct.pack('<L', -1/0)",
            "struct.pack('<L', 0/0)",
            "struct.pack('<l', -(0/0))",
            "struct.pack('<I3', -1)",
            // Floats and doubles.
            "struct.pack('>f<f>d<d', 1.5, -0.1, math.pi, -0.0)",
            "struct.pack('fd', 1/3, 1/3)",
            "struct.pack('<f', 1e40)",
            "struct.pack('>f', 1e-50)",
            "struct.pack('<f>d', 0/0, 1/0)",
            "struct.pack('>d', -1/0)",
            "struct.pack('>f', 16777217)",
            // Padding, spaces, strings.
            "struct.pack('bxh', 1, 2)",
            "struct.pack('xx')",
            "struct.pack(' > b   h ', 1, 2)",
            "struct.pack('c3', 'abcdef')",
            "struct.pack('c', 'xyz')",
            "struct.pack('c0', 'hello')",
            "struct.pack('c0c0', '', 'x')",
            "struct.pack('c10', string.rep('q', 20))",
            "struct.pack('s', 'a\\0b')",
            "struct.pack('sb', '', 7)",
            "struct.pack('c0s', 12.5, 1e20)",
            "struct.pack('>hi', '  0x10  ', '1e3')",
            // The format ends at a NUL byte.
            "struct.pack('b\\0b', 1, 2)",
            "struct.pack('')",
            "struct.pack('', 1, 2, 3)",
        ],
    );
}

#[test]
fn struct_alignment() {
    let mut d = Differential::start().expect("servers start");
    ret_all(
        &mut d,
        &[
            "struct.pack('!bd', 1, 2)",
            "struct.pack('!4bd', 1, 2)",
            "struct.pack('!1bd', 1, 2)",
            "struct.pack('!16bd', 1, 2)",
            "struct.pack('!2bhbib', 1, 2, 3, 4, 5)",
            "struct.pack('!8 b i3 b h b I5 b i7', 1, 2, 3, 4, 5, 6, 7, 8)",
            "struct.pack('!bT', 1, 2)",
            "struct.pack('!bf', 1, 2)",
            "struct.pack('!b!2h!4i', 1, 2, 3)",
            "struct.pack('>!4 b I2 i', 1, 2, 3)",
            "struct.pack('!4 b c3 i', 1, 'abc', 2)",
            "struct.pack('!4 b s i', 1, 'ab', 2)",
            "struct.pack('!4 b x i', 1, 2)",
            "struct.pack('!bi16', 1, 2)",
            "struct.pack('!32bi32', 1, 2)",
            "struct.pack('!1073741824 b i', 1, 2)",
            "struct.pack('!b i0 b', 1, 2, 3)",
            "struct.size('!bd')",
            "struct.size('!4 b i3 i5 b d')",
            "struct.size('!2 b h b i b')",
            "struct.size('!8 b i9 b i12 b i16 b i32')",
        ],
    );
    show_all(
        &mut d,
        &[
            "struct.unpack('!4 b i', struct.pack('!4 b i', 1, 2))",
            "struct.unpack('!bd', struct.pack('!bd', -5, 0.25))",
            "struct.unpack('!8 b i3 b h b I5 b i7', struct.pack('!8 b i3 b h b I5 b i7', 1, -2, 3, -4, 5, 6, 7, -8))",
            "struct.unpack('!2 b h', 'abcd', 2)",
            "struct.unpack('!4 b i', 'xabcdefgh', 2)",
        ],
    );
}

#[test]
fn struct_unpack_values() {
    let mut d = Differential::start().expect("servers start");
    show_all(
        &mut d,
        &[
            "struct.unpack('>bBhHlLTiI', struct.pack('>bBhHlLTiI', -1, 255, -2, 65534, -3, 2^40 + 5, 12345, -4, 4000000000))",
            "struct.unpack('<bBhHlLTiI', struct.pack('<bBhHlLTiI', -1, 255, -2, 65534, -3, 2^40 + 5, 12345, -4, 4000000000))",
            "struct.unpack('bBhHlLTiI', string.rep('\\255', 47))",
            "struct.unpack('<i3', '\\255\\255\\127')",
            "struct.unpack('>i3I3', '\\128\\0\\1\\128\\0\\1')",
            "struct.unpack('<L>L', string.rep('\\255', 16))",
            "struct.unpack('<l', '\\0\\0\\0\\0\\0\\0\\0\\128')",
            "struct.unpack('>I5i5', '\\255\\1\\2\\3\\4\\255\\1\\2\\3\\4')",
            // Wider than a long: the low 8 bytes, and C's sign mask.
            "struct.unpack('<i9', string.rep('\\255', 9))",
            "struct.unpack('<i9', '\\128' .. string.rep('\\0', 8))",
            "struct.unpack('<i9', '\\127' .. string.rep('\\0', 8))",
            "struct.unpack('>i9', string.rep('\\0', 8) .. '\\128')",
            "struct.unpack('<i12', '\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10\\11\\12')",
            "struct.unpack('>i12', '\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10\\11\\12')",
            "struct.unpack('<I12', '\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10\\11\\12')",
            "struct.unpack('<i16>i16', string.rep('\\200', 32))",
            "struct.unpack('<i17', string.rep('\\1', 17))",
            "struct.unpack('<i17', string.rep('\\255', 17))",
            "struct.unpack('<i32>I32', string.rep('\\129', 64))",
            "struct.unpack('i0I0', '')",
            "struct.unpack('i0b', '\\255')",
            // Floats and doubles.
            "struct.unpack('<f', '\\0\\0\\192\\127')",
            "struct.unpack('>f<f', '\\63\\192\\0\\0\\0\\0\\192\\63')",
            "struct.unpack('>d<d', struct.pack('>d<d', math.pi, -1/3))",
            "struct.unpack('d', struct.pack('d', 1/0))",
            "struct.unpack('f', struct.pack('f', -1/0))",
            "struct.unpack('>f', struct.pack('>f', 0.1))",
            // Padding and strings.
            "struct.unpack('bxb', 'a_b')",
            "struct.unpack('c3', 'abcdef')",
            "struct.unpack('c3c3', 'abcdef')",
            "struct.unpack('c', 'xyz')",
            "struct.unpack('bc0', '\\3abcdef')",
            "struct.unpack('Bc0B', '\\2xy\\7')",
            "struct.unpack('bc0', '\\0abc')",
            "struct.unpack('>hc0', '\\0\\4abcdef')",
            "struct.unpack('c1c0', '3abcd')",
            "struct.unpack('sc0', '2\\0xyz')",
            "struct.unpack('sc0', ' 0x2 \\0xyz')",
            "struct.unpack('fc0', struct.pack('f', 2.5) .. 'abc')",
            "struct.unpack('dc0', struct.pack('d', 1/0) .. 'abc')",
            "struct.unpack('dc0', struct.pack('d', 2^64) .. 'abc')",
            "struct.unpack('dc0', struct.pack('d', 0/0) .. 'abc')",
            "struct.unpack('bc0', '\\255abc')",
            "struct.unpack('s', 'abc\\0def')",
            "struct.unpack('ss', 'a\\0b\\0')",
            "struct.unpack('s b', 'hi\\0\\5')",
            "struct.unpack('s', '\\0')",
            "struct.unpack('b\\0b', '\\1\\2')",
            "struct.unpack(' > < ', '')",
            // Start positions.
            "struct.unpack('b', 'abc', 2)",
            "struct.unpack('b', 'abc', 3)",
            "struct.unpack('b', 'abc', 1.9)",
            "struct.unpack('b', 'abc', '2')",
            "struct.unpack('b', 'abc', nil)",
            "struct.unpack('', 'abc', 10)",
            "struct.unpack('>', 'abc', 4)",
            "struct.unpack('', 'abc', -1)",
            "struct.unpack('', 'abc', -5)",
            "struct.unpack('', 'abc', 2^63)",
            "struct.unpack('', 'abc', 1e300)",
            "struct.unpack('', '', 1)",
            "struct.unpack('bb', 12)",
            "struct.unpack(12, '\\1\\2')",
            "struct.unpack('s', 'ab\\0cd\\0', 4)",
            "struct.unpack('c2', 'abcd', 3)",
            // Sizes.
            "struct.size('bBhHlLTiIfdx')",
            "struct.size('!bBhHlLTiIfdx')",
            "struct.size('i3i5c10')",
            "struct.size('zq9yZ')",
            "struct.size('>!2 h b')",
            "struct.size('')",
            "struct.size('i0I32')",
            "struct.size('c2147483647c2147483647')",
            "struct.size(12)",
        ],
    );
}

#[test]
fn struct_errors() {
    let mut d = Differential::start().expect("servers start");
    pcall_all(
        &mut d,
        &[
            "struct.pack('z')",
            "struct.pack('%')",
            "struct.pack('x3')",
            "struct.pack('s5', 'a')",
            "struct.pack(1)",
            "struct.pack('b', 'x')",
            "struct.pack('b')",
            "struct.pack('bb', 1)",
            "struct.pack('bb', 1, nil)",
            "struct.pack('f', {})",
            "struct.pack('d', true)",
            "struct.pack('c5', 'ab')",
            "struct.pack('bc5', 1, 'ab')",
            "struct.pack('s', {})",
            "struct.pack('c0')",
            "struct.pack('i33', 1)",
            "struct.pack('I99999', 1)",
            "struct.pack('!3')",
            "struct.pack('!0')",
            "struct.pack('!6 b', 1)",
            "struct.pack('!2147483647')",
            "struct.pack('!2147483648')",
            "struct.pack('c2147483647', 'a')",
            "struct.pack('c2147483648', 'a')",
            "struct.pack('c99999999999999999999', 'a')",
            "struct.pack('i2147483647', 1)",
            "struct.pack()",
            "struct.pack({})",
            "struct.pack(nil)",
            "struct.unpack('b', '')",
            "struct.unpack('>i', 'abc')",
            "struct.unpack('x', '')",
            "struct.unpack('d', '1234567')",
            "struct.unpack('s', 'abc')",
            "struct.unpack('bs', '\\1')",
            "struct.unpack('c0', 'abc')",
            "struct.unpack('xc0', 'abc')",
            "struct.unpack('sc0', 'x\\0abc')",
            "struct.unpack('bc0', '\\9abc')",
            "struct.unpack('b', 'a', 0)",
            "struct.unpack('b', 'a', -0.5)",
            "struct.unpack('b', 'a', 'x')",
            "struct.unpack('b', 'a', {})",
            "struct.unpack('b', 'a', 3)",
            "struct.unpack('>', 'a', 3)",
            "struct.unpack('b', 'a', -1)",
            "struct.unpack('!8d', string.rep('\\1', 16), -3)",
            "struct.unpack('b')",
            "struct.unpack()",
            "struct.unpack('b', {})",
            "struct.unpack('i99', 'a')",
            "struct.unpack('c99', 'a')",
            "struct.unpack('c2147483647', 'abc')",
            "struct.unpack('q', 'a')",
            "struct.unpack('!5', 'a')",
            "struct.size('s')",
            "struct.size('c0')",
            "struct.size('bc0')",
            "struct.size('b s')",
            "struct.size('!3')",
            "struct.size('%')",
            "struct.size('i40')",
            "struct.size('c9999999999')",
            "struct.size()",
            "struct.size({})",
        ],
    );
    // How the function is named in argument errors, as the caller spelled
    // it (or '?' through pcall), and the errors uncaught.
    for script in [
        "return {pcall(struct.pack, 'z')}",
        "return {pcall(struct.unpack, 'b', '')}",
        "return {pcall(struct.size, 's')}",
        "return {pcall(struct.pack, '!3')}",
        "local p = struct.pack return {pcall(function() return p('z') end)}",
        "return {pcall(function() local s = struct.size; local n = s('c0') return n end)}",
        "return {pcall(function() return struct:pack('b') end)}",
        "return {pcall(function() return struct:unpack('b') end)}",
        "return {pcall(function() return struct['unpack']('b', '') end)}",
        "return struct.pack('z')",
        "return struct.unpack('b', '')",
        "return struct.size('!3')",
        "local x = struct.unpack('c0', 'a') return x",
        "struct.pack = function() end",
        "struct.new = 1",
        "return {type(struct), type(struct.pack), type(struct.unpack), type(struct.size)}",
    ] {
        ev(&mut d, script);
    }
}

#[test]
fn struct_too_many_results() {
    // `unpack` fails where the C version's `luaL_checkstack` would (its
    // stack: the arguments, then the values), with the same message, and
    // before it has made any strings. (Between about 7990 and 7998
    // results the C version still succeeds, where mlua cannot return that
    // many values from a callback: not compared here.)
    let mut d = Differential::start().expect("servers start");
    pcall_all(
        &mut d,
        &[
            "select('#', struct.unpack(string.rep('b', 7000), string.rep('\\1', 7000)))",
            "select('#', struct.unpack(string.rep('c1', 7000), string.rep('a', 7000)))",
            "select(7000, struct.unpack(string.rep('c1', 7000), string.rep('a', 6999) .. 'z'))",
            "select('#', struct.unpack(string.rep('s', 7000), string.rep('\\0', 7000)))",
            "select('#', struct.unpack(string.rep('b', 7998), string.rep('\\1', 7998)))",
            "select('#', struct.unpack(string.rep('b', 7997), string.rep('\\1', 7997), 1))",
            "select('#', struct.unpack(string.rep('b', 7996), string.rep('\\1', 7996), 1, 2, 3))",
            "select('#', struct.unpack(string.rep('c1', 7998), string.rep('a', 7998)))",
            "select('#', struct.unpack(string.rep('s', 9000), string.rep('\\0', 9000)))",
            "select('#', struct.unpack(string.rep('b', 8500) .. 'z', string.rep('\\1', 9000)))",
            "select('#', struct.unpack(string.rep('x', 9000), string.rep('\\1', 9000)))",
            "#struct.pack(string.rep('i32', 7000), unpack({}, 1, 0))",
            "#struct.pack(string.rep('!32 b i32', 100), unpack((function() local t = {} for i = 1, 200 do t[i] = i end return t end)()))",
            "#struct.pack(string.rep('i32', 9000), unpack((function() local t = {} for i = 1, 7000 do t[i] = -i end return t end)()))",
        ],
    );
}

#[test]
fn struct_random_round_trips() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    // Random formats (orders, alignments, every option) with random
    // values in range: the packed bytes, then what unpack makes of them.
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x0515_70c7);
    for _ in 0..60 {
        let mut fmt = String::new();
        let mut values = Vec::new();
        for _ in 0..rng.gen_range(1..12) {
            match rng.gen_range(0..16) {
                0 => fmt.push_str(["<", ">", "!", " "][rng.gen_range(0..4)]),
                1 => fmt.push_str(&format!("!{}", 1 << rng.gen_range(0..6))),
                2 => {
                    fmt.push('b');
                    values.push(rng.gen_range(-128i64..128).to_string());
                }
                3 => {
                    fmt.push('B');
                    values.push(rng.gen_range(0i64..256).to_string());
                }
                4 => {
                    fmt.push('h');
                    values.push(rng.gen_range(-32768i64..32768).to_string());
                }
                5 => {
                    fmt.push('H');
                    values.push(rng.gen_range(0i64..65536).to_string());
                }
                6 => {
                    fmt.push(['l', 'L', 'T'][rng.gen_range(0..3)]);
                    // Exact in a double.
                    values.push(rng.gen_range(0i64..1 << 53).to_string());
                }
                7 => {
                    let n = rng.gen_range(1u32..8);
                    fmt.push_str(&format!("i{n}"));
                    let half = 1i64 << (8 * n - 1);
                    values.push(rng.gen_range(-half..half).to_string());
                }
                8 => {
                    let n = rng.gen_range(1u32..7);
                    fmt.push_str(&format!("I{n}"));
                    values.push(rng.gen_range(0i64..1 << (8 * n)).to_string());
                }
                9 => {
                    fmt.push(['i', 'I'][rng.gen_range(0..2)]);
                    values.push(rng.gen_range(0i64..1 << 31).to_string());
                }
                10 => {
                    fmt.push('f');
                    values.push(format!("{:e}", rng.gen::<f32>() * 1e6 - 5e5));
                }
                11 => {
                    fmt.push('d');
                    let bits: u64 = rng.gen();
                    let v = f64::from_bits(bits);
                    values.push(if v.is_finite() {
                        format!("{v:e}")
                    } else {
                        "1.5".into()
                    });
                }
                12 => fmt.push('x'),
                13 => {
                    let n = rng.gen_range(1..6);
                    fmt.push_str(&format!("c{n}"));
                    values.push(format!("'{}'", "abcdefghij".get(..n + 2).unwrap_or("")));
                }
                14 => {
                    fmt.push('s');
                    values.push(format!(
                        "'{}'",
                        "xyz".get(..rng.gen_range(0..4)).unwrap_or("")
                    ));
                }
                _ => {
                    fmt.push_str("Bc0");
                    let n = rng.gen_range(0..5);
                    values.push(n.to_string());
                    values.push(format!("'{}'", "pqrst".get(..n).unwrap_or("")));
                }
            }
        }
        let args = values.join(", ");
        let sep = if args.is_empty() { "" } else { ", " };
        ev(&mut d, &format!("return struct.pack('{fmt}'{sep}{args})"));
        ev(
            &mut d,
            &format!("{SHOW}return show(struct.unpack('{fmt}', struct.pack('{fmt}'{sep}{args})))"),
        );
        if !fmt.contains('s') && !fmt.contains("c0") {
            ev(&mut d, &format!("return struct.size('{fmt}')"));
        }
    }
}

/// What INFO says about errors after `script` (errorstats, the error total,
/// and the calls/rejected/failed counts of `commands`).
fn error_stats(c: &mut memlog_tests::RawConn, commands: &[&str]) -> Vec<String> {
    let text = |c: &mut memlog_tests::RawConn, section: &str| match c.call(&["INFO", section]) {
        Ok(memlog_tests::RespValue::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO {section}: {other:?}"),
    };
    let mut out: Vec<String> = text(c, "errorstats")
        .lines()
        .filter(|l| l.starts_with("errorstat_"))
        .map(str::to_owned)
        .collect();
    out.extend(
        text(c, "stats")
            .lines()
            .filter(|l| l.starts_with("total_error_replies:"))
            .map(str::to_owned),
    );
    let cmdstats = text(c, "commandstats");
    for name in commands {
        let line = cmdstats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or("");
        // calls, rejected_calls and failed_calls (not the timings).
        let kept: Vec<&str> = line
            .split([':', ','])
            .filter(|f| f.starts_with("calls=") || f.contains("_calls="))
            .collect();
        out.push(format!("{name} {}", kept.join(",")));
    }
    out
}

/// Errors inside scripts count once in INFO, where they arise: a command
/// the script ran or refused (then not again by the script's reply), or the
/// script's own error; as redis-server counts them.
#[test]
fn script_errors_count_once_as_in_redis() {
    let mut d = Differential::start().expect("servers start");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["EVAL", "return redis.call('select', 99)", "0"],
            &["eval", "select"],
        ),
        (
            &["EVAL", "local t = redis.pcall('select', 99) return 1", "0"],
            &["eval", "select"],
        ),
        (
            &["EVAL", "return redis.pcall('select', 99)", "0"],
            &["eval", "select"],
        ),
        (
            &["EVAL_RO", "return redis.call('set', 'x', 'y')", "1", "x"],
            &["eval_ro", "set"],
        ),
        (
            &[
                "EVAL_RO",
                "local t = redis.pcall('set', 'x', 'y') return 1",
                "1",
                "x",
            ],
            &["eval_ro", "set"],
        ),
        (&["EVAL", "return redis.call('nosuch')", "0"], &["eval"]),
        (&["EVAL", "return redis.call('get')", "0"], &["eval", "get"]),
        (
            &["EVAL", "return redis.error_reply('MY oops')", "0"],
            &["eval"],
        ),
        (&["EVAL", "error('oops')", "0"], &["eval"]),
        (&["EVAL", "return redis.call()", "0"], &["eval"]),
    ];
    for (cmd, counted) in cases {
        d.check(&["CONFIG", "RESETSTAT"]);
        d.check(cmd);
        let m = error_stats(&mut d.m, counted);
        let r = error_stats(&mut d.r, counted);
        assert_eq!(m, r, "after {cmd:?}");
    }
}
