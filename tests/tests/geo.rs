//! Differential tests of the GEO family against a real redis-server: scores,
//! positions, distances, search results (order included) and errors must
//! be identical, in RESP2 and RESP3.

use memlog_tests::{assert_effects_rebuild, Differential, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BASIC: &str = "FLUSHALL
     GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
     ZRANGE Sicily 0 -1 WITHSCORES
     GEODIST Sicily Palermo Catania
     GEODIST Sicily Palermo Catania km
     GEODIST Sicily Palermo Catania MI
     GEODIST Sicily Palermo Catania ft
     GEODIST Sicily Palermo Catania yards
     GEODIST Sicily Palermo Catania km extra
     GEODIST Sicily Palermo nosuch
     GEODIST nokey a b
     GEODIST Sicily Palermo Palermo
     GEOHASH Sicily Palermo Catania nosuch
     GEOHASH nokey a b
     GEOHASH Sicily
     GEOPOS Sicily Palermo Catania NonExisting
     GEOPOS nokey a
     GEOPOS Sicily
     GEOADD Sicily 13.583333 37.316667 Agrigento
     GEOADD Sicily NX 13.583333 37.316667 Agrigento 12.5 37.8 Marsala
     GEOADD Sicily XX CH 13.4 37.3 Agrigento 14.0 37.0 Nowhere
     GEOADD Sicily CH NX XX 1 1 a
     ZADD odd -1 neg inf pinf -inf ninf 1e20 big 9007199254740993 b53 -1e300 tiny
     GEOPOS odd neg pinf ninf big b53 tiny
     GEOHASH odd neg pinf ninf big b53 tiny
     GEODIST odd neg big
     GEOADD Sicily 1 2
     GEOADD Sicily 1 2 a 3
     GEOADD Sicily CH CH CH
     GEOADD Sicily 181 0 bad
     GEOADD Sicily 0 86 bad
     GEOADD Sicily -180 -85.05112878 sw 180 85.05112878 ne
     GEOADD Sicily abc 0 bad
     GEOADD Sicily 0 nan bad
     GEOADD Sicily GT 1 1 a
     GEOPOS Sicily sw ne
     GEOHASH Sicily sw ne
     GEORADIUS Sicily 15 37 200 km
     GEORADIUS Sicily 15 37 200 km ASC
     GEORADIUS Sicily 15 37 200 km DESC
     GEORADIUS Sicily 15 37 200 km WITHDIST
     GEORADIUS Sicily 15 37 200 km WITHCOORD
     GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH
     GEORADIUS Sicily 15 37 200 km WITHHASH COUNT 1
     GEORADIUS Sicily 15 37 200 km COUNT 2 DESC
     GEORADIUS Sicily 15 37 200 km COUNT 1 ANY
     GEORADIUS Sicily 15 37 200 km ANY
     GEORADIUS Sicily 15 37 200 km COUNT 0
     GEORADIUS Sicily 15 37 200 km COUNT -3
     GEORADIUS Sicily 15 37 200 km COUNT x
     GEORADIUS Sicily 15 37 200 km COUNT
     GEORADIUS Sicily 15 37 -1 km
     GEORADIUS Sicily 15 37 x km
     GEORADIUS Sicily 15 37 10 parsecs
     GEORADIUS Sicily 200 37 10 km
     GEORADIUS Sicily 15 37 10 km BOGUS
     GEORADIUS Sicily 15 37 0 km
     GEORADIUS Sicily 15 37 1 m
     GEORADIUS nokey 15 37 200 km
     GEORADIUS Sicily 15 37 200 km STORE dst
     ZRANGE dst 0 -1 WITHSCORES
     GEORADIUS Sicily 15 37 200 km STOREDIST dst2 ASC COUNT 2
     ZRANGE dst2 0 -1 WITHSCORES
     GEORADIUS Sicily 15 37 200 km STORE dst WITHDIST
     GEORADIUS Sicily 15 37 1 m STORE dst
     EXISTS dst
     GEORADIUS nokey 15 37 200 km STORE dst2
     EXISTS dst2
     GEORADIUS_RO Sicily 15 37 200 km WITHDIST
     GEORADIUS_RO Sicily 15 37 200 km STORE dst
     GEORADIUSBYMEMBER Sicily Agrigento 100 km
     GEORADIUSBYMEMBER Sicily Agrigento 100 km WITHDIST ASC
     GEORADIUSBYMEMBER Sicily nosuch 100 km
     GEORADIUSBYMEMBER nokey nosuch 100 km
     GEORADIUSBYMEMBER nokey nosuch x y WITHDIST
     GEORADIUSBYMEMBER nokey nosuch x y BOGUS
     GEORADIUSBYMEMBER Sicily Palermo 200 km STORE dst
     GEORADIUSBYMEMBER_RO Sicily Palermo 200 km WITHCOORD
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC
     GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHCOORD WITHDIST
     GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 200 100 km DESC
     GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 100 km WITHHASH
     GEOSEARCH Sicily FROMMEMBER nosuch BYRADIUS 100 km
     GEOSEARCH nokey FROMMEMBER nosuch BYRADIUS 100 km
     GEOSEARCH Sicily BYRADIUS 100 km
     GEOSEARCH Sicily FROMLONLAT 15 37
     geosearch Sicily FROMLONLAT 15 37 WITHDIST
     GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km
     GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 15 37 BYRADIUS 1 km
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km BYBOX 1 1 km
     GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 1 km
     GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 1 km
     GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 x km
     GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 1 lightyears
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 100 km STORE dst
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 ANY
     GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY
     GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km
     ZRANGE dst 0 -1 WITHSCORES
     GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST COUNT 2 DESC
     ZRANGE dst 0 -1 WITHSCORES
     GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST
     GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x
     GEOSEARCHSTORE dst nokey FROMLONLAT 15 37 BYRADIUS 200 km
     EXISTS dst
     SET str x
     GEOADD str 1 1 a
     GEOPOS str a
     GEOHASH str a
     GEODIST str a b
     GEORADIUS str 1 1 1 km
     GEOSEARCH str FROMLONLAT 1 1 BYRADIUS 1 km
     GEOSEARCHSTORE dst str FROMLONLAT 1 1 BYRADIUS 1 km
     GEOADD
     GEOADD k
     GEOADD k 1 1
     GEODIST k a
     GEORADIUS k 1 1 1
     GEOSEARCH k FROMLONLAT 1 1
     GEOSEARCHSTORE dst k FROMLONLAT 1 1
     ZADD z 1e20 huge -5 negative 0 zero
     GEOPOS z zero
     GEOHASH z zero
     GEOADD pole 0 85 n 0 -85 s 179.9 0 e -179.9 0 w 0 0 o
     GEORADIUS pole 0 84 500 km WITHDIST
     GEORADIUS pole 180 0 100 km WITHDIST
     GEOSEARCH pole FROMLONLAT 0 0 BYBOX 40000 40000 km ASC WITHDIST
     GEOSEARCH pole FROMLONLAT 0 0 BYRADIUS 20000 km ASC WITHDIST
     GEORADIUS pole 0 0 0 m WITHDIST";

#[test]
fn geo_commands_match_redis() {
    let mut d = Differential::start().expect("servers start");
    d.script(BASIC);
    // RESP3: doubles for coordinates, null kinds.
    // (Client ids differ between the two servers.)
    d.both(&["HELLO", "3"]);
    d.script(
        "GEOPOS Sicily Palermo nosuch
         GEOHASH Sicily Palermo nosuch
         GEODIST Sicily Palermo nosuch
         GEORADIUS Sicily 15 37 200 km WITHCOORD WITHDIST WITHHASH ASC
         GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 m",
    );
}

/// Random points and searches, Redis' "GEOSEARCH fuzzy test" style: every
/// result, in order, with distances, hashes and coordinates.
#[test]
fn geo_searches_match_redis_on_random_data() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x6e0);
    let mut total_found = 0;
    for round in 0..12 {
        d.check(&["DEL", "points"]);
        // Clustered or spread, near the poles and the antimeridian too.
        let (clon, clat, spread): (f64, f64, f64) = match round % 4 {
            0 => (
                rng.gen_range(-180.0..180.0),
                rng.gen_range(-70.0..70.0),
                2.0,
            ),
            1 => (
                rng.gen_range(-180.0..180.0),
                rng.gen_range(-85.0..85.0),
                40.0,
            ),
            2 => (179.5, rng.gen_range(-60.0..60.0), 1.0),
            _ => (rng.gen_range(-180.0..180.0), 83.0, 3.0),
        };
        let mut args = vec!["GEOADD".to_string(), "points".into()];
        for i in 0..300 {
            let lon = (clon + rng.gen_range(-spread..spread)).clamp(-180.0, 180.0);
            let lat = (clat + rng.gen_range(-spread..spread)).clamp(-85.0, 85.0);
            args.push(format!("{lon:.6}"));
            args.push(format!("{lat:.6}"));
            args.push(format!("p{i}"));
        }
        // A few duplicates: equal distances, where sort order is Redis'.
        for i in 0..10 {
            let j = rng.gen_range(0..300usize) * 3 + 2;
            let (lon, lat) = (args[j].clone(), args[j + 1].clone());
            args.extend([lon, lat, format!("dup{i}")]);
        }
        d.check(&args);
        for _ in 0..8 {
            let lon = (clon + rng.gen_range(-spread..spread)).clamp(-180.0, 180.0);
            let lat = (clat + rng.gen_range(-spread..spread)).clamp(-85.0, 85.0);
            let (lon, lat) = (format!("{lon:.4}"), format!("{lat:.4}"));
            let radius = format!("{:.1}", rng.gen_range(1.0..(spread * 150.0)));
            let (w, h) = (
                format!("{:.1}", rng.gen_range(1.0..(spread * 300.0))),
                format!("{:.1}", rng.gen_range(1.0..(spread * 300.0))),
            );
            let count = rng.gen_range(1..40).to_string();
            d.check(&[
                "GEORADIUS",
                "points",
                &lon,
                &lat,
                &radius,
                "km",
                "WITHDIST",
                "WITHHASH",
                "WITHCOORD",
                "ASC",
            ]);
            d.check(&[
                "GEORADIUS",
                "points",
                &lon,
                &lat,
                &radius,
                "km",
                "COUNT",
                &count,
                "DESC",
                "WITHDIST",
            ]);
            d.check(&[
                "GEORADIUS",
                "points",
                &lon,
                &lat,
                &radius,
                "km",
                "COUNT",
                &count,
                "WITHDIST",
            ]);
            if let RespValue::Array(found) =
                d.check(&["GEORADIUS", "points", &lon, &lat, &radius, "km"])
            {
                total_found += found.len();
            }
            d.check(&[
                "GEOSEARCH",
                "points",
                "FROMLONLAT",
                &lon,
                &lat,
                "BYBOX",
                &w,
                &h,
                "km",
                "WITHDIST",
                "ASC",
            ]);
            d.check(&[
                "GEOSEARCH",
                "points",
                "FROMLONLAT",
                &lon,
                &lat,
                "BYBOX",
                &w,
                &h,
                "mi",
                "COUNT",
                &count,
            ]);
            d.check(&[
                "GEOSEARCH",
                "points",
                "FROMLONLAT",
                &lon,
                &lat,
                "BYRADIUS",
                &radius,
                "km",
                "COUNT",
                &count,
                "ANY",
            ]);
            d.check(&[
                "GEOSEARCH",
                "points",
                "FROMMEMBER",
                "p7",
                "BYRADIUS",
                &radius,
                "km",
                "DESC",
                "WITHCOORD",
            ]);
            d.check(&[
                "GEOSEARCHSTORE",
                "dst",
                "points",
                "FROMLONLAT",
                &lon,
                &lat,
                "BYRADIUS",
                &radius,
                "km",
                "STOREDIST",
            ]);
            d.check(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
            d.check(&["GEODIST", "points", "p1", "p2", "km"]);
            d.check(&["GEOPOS", "points", "p3", "dup1"]);
            d.check(&["GEOHASH", "points", "p4", "dup2"]);
        }
    }
    // The plain searches (96, over 12 sets of 310 points) found members.
    assert!(
        total_found > 1000,
        "searches found only {total_found} members"
    );
}

#[test]
fn geo_effects_rebuild_the_same_data() {
    assert_effects_rebuild(&[
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &["GEOADD", "g", "XX", "CH", "13.4", "38.1", "Palermo"],
        &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d1"],
        &[
            "GEORADIUSBYMEMBER",
            "g",
            "Palermo",
            "200",
            "km",
            "STOREDIST",
            "d2",
        ],
        &[
            "GEOSEARCHSTORE",
            "d3",
            "g",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "STOREDIST",
        ],
        &["SET", "d4", "x"],
        &["GEORADIUS", "g", "0", "0", "1", "m", "STORE", "d4"],
    ]);
}
