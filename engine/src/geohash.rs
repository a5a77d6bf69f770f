//! Geohash geometry for the GEO commands, computing exactly what Redis 7.0
//! computes (geohash.c, geohash_helper.c), so that scores, positions,
//! distances and search results are bit-for-bit Redis':
//!
//! - a position is a 52-bit interleaved geohash (26 bits of latitude in the
//!   even bits, 26 of longitude in the odd ones) over longitude -180..180
//!   and latitude -85.05112878..85.05112878 (Web Mercator's limits), kept
//!   as the member's score in a sorted set;
//! - a radius or box search covers its shape with the geohash box of the
//!   centre at a step fitted to the size plus its eight neighbours, each
//!   one score range of the sorted set, then filters by haversine distance.

/// Bits per coordinate: 2 × 26 = 52 bits, exact in a double.
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash of `step` bits per coordinate. `step == 0` marks a neighbour
/// excluded from a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

impl Hash {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The hash as a 52-bit score prefix (Redis' geohashAlign52Bits).
    pub fn align52(&self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Range {
    min: f64,
    max: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Area {
    longitude: Range,
    latitude: Range,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// Redis' geohashEncode: None outside the supported coordinates.
fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Hash> {
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    // C converts the offsets to uint32_t: truncation.
    Some(Hash {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// The score of a position (GEOADD): None outside the supported range.
pub fn encode_score(longitude: f64, latitude: f64) -> Option<u64> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, STEP_MAX).map(|h| h.align52())
}

fn decode(long_range: Range, lat_range: Range, hash: Hash) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) / div) * long_scale,
        },
    })
}

/// C's `(uint64_t)` conversion of a double as gcc compiles it for x86-64,
/// where it is undefined (negative, NaN, too big: scores no GEO command
/// writes, set with ZADD): one truncating conversion to a signed integer
/// below 2^63 (out of range gives i64::MIN), and above it a conversion of
/// `x - 2^63` with the top bit flipped. Rust's `as` saturates instead, so
/// GEOPOS & co of such members differed from Redis.
fn c_double_to_u64(x: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let cvtt = |v: f64| -> i64 {
        if (-TWO_63..TWO_63).contains(&v) {
            v as i64
        } else {
            i64::MIN
        }
    };
    if x < TWO_63 {
        cvtt(x) as u64
    } else {
        (cvtt(x - TWO_63) as u64) ^ (1 << 63)
    }
}

/// The position `[longitude, latitude]` a score stands for: the centre of
/// its box (Redis' decodeGeohash).
pub fn decode_score(score: f64) -> [f64; 2] {
    let hash = Hash {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    let area = decode(LONG_RANGE, LAT_RANGE, hash).unwrap_or_default();
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// The standard 11-character geohash string of a score (GEOHASH): Redis
/// re-encodes the position over latitude -90..90.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = decode_score(score);
    let bits = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )
    .map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    out
}

/// Redis' geohash_move_x/_y: steps the coordinate whose bits `axis`
/// selects (odd bits: longitude, even bits: latitude) by `d`, wrapping.
fn move_axis(hash: &mut Hash, d: i8, axis: u64) {
    if d == 0 {
        return;
    }
    let other = !axis;
    let mut v = hash.bits & axis;
    let kept = hash.bits & other;
    let shift = 64 - u32::from(hash.step) * 2;
    let zz = other >> shift;
    if d > 0 {
        v = v.wrapping_add(zz + 1);
    } else {
        v |= zz;
        v = v.wrapping_sub(zz + 1);
    }
    v &= axis >> shift;
    hash.bits = v | kept;
}

const LONGITUDE_BITS: u64 = 0xaaaaaaaaaaaaaaaa;
const LATITUDE_BITS: u64 = 0x5555555555555555;

fn moved(hash: Hash, dx: i8, dy: i8) -> Hash {
    let mut h = hash;
    move_axis(&mut h, dx, LONGITUDE_BITS);
    move_axis(&mut h, dy, LATITUDE_BITS);
    h
}

/// What a search covers: the centre and how far around it.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `[longitude, latitude]` of the centre.
    pub xy: [f64; 2],
    /// Meters per unit of the search's distances.
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Debug, Clone, Copy)]
pub enum ShapeKind {
    /// A radius, in the search's unit.
    Circle(f64),
    /// Width and height, in the search's unit.
    Box(f64, f64),
}

impl Shape {
    /// `[min_lon, min_lat, max_lon, max_lat]` (Redis' geohashBoundingBox).
    fn bounding_box(&self) -> [f64; 4] {
        let [longitude, latitude] = self.xy;
        let (height, width) = match self.kind {
            ShapeKind::Circle(r) => (self.conversion * r, self.conversion * r),
            ShapeKind::Box(w, h) => (self.conversion * (h / 2.0), self.conversion * (w / 2.0)),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let southern = latitude < 0.0;
        let long_delta = if southern {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            longitude - long_delta,
            latitude - lat_delta,
            longitude + long_delta,
            latitude + lat_delta,
        ]
    }

    /// The boxes to scan, in Redis' order (centre, N, S, E, W, NE, NW, SE,
    /// SW), excluded ones with step 0 (geohashCalculateAreasByShapeWGS84).
    pub fn search_boxes(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let [longitude, latitude] = self.xy;
        let radius_meters = match self.kind {
            ShapeKind::Circle(r) => r,
            ShapeKind::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.conversion;
        let mut steps = estimate_steps_by_radius(radius_meters, latitude);
        let centre = |steps| {
            let hash = encode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps).unwrap_or(Hash {
                bits: 0,
                step: steps,
            });
            let area = decode(LONG_RANGE, LAT_RANGE, hash).unwrap_or_default();
            (hash, area)
        };
        let (mut hash, mut area) = centre(steps);
        let area_of = |h: Hash| decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
        let decrease_step = area_of(moved(hash, 0, 1)).latitude.max < max_lat
            || area_of(moved(hash, 0, -1)).latitude.min > min_lat
            || area_of(moved(hash, 1, 0)).longitude.max < max_lon
            || area_of(moved(hash, -1, 0)).longitude.min > min_lon;
        if steps > 1 && decrease_step {
            steps -= 1;
            (hash, area) = centre(steps);
        }
        let mut n = moved(hash, 0, 1);
        let mut s = moved(hash, 0, -1);
        let mut e = moved(hash, 1, 0);
        let mut w = moved(hash, -1, 0);
        let mut ne = moved(hash, 1, 1);
        let mut nw = moved(hash, -1, 1);
        let mut se = moved(hash, 1, -1);
        let mut sw = moved(hash, -1, -1);
        if steps >= 2 {
            let zero = Hash::default();
            if area.latitude.min < min_lat {
                (s, sw, se) = (zero, zero, zero);
            }
            if area.latitude.max > max_lat {
                (n, ne, nw) = (zero, zero, zero);
            }
            if area.longitude.min < min_lon {
                (w, sw, nw) = (zero, zero, zero);
            }
            if area.longitude.max > max_lon {
                (e, se, ne) = (zero, zero, zero);
            }
        }
        [hash, n, s, e, w, ne, nw, se, sw]
    }

    /// The distance from the centre, in meters, of a member at `xy`, if it
    /// is inside the shape (Redis' geoWithinShape).
    pub fn distance_if_within(&self, xy: [f64; 2]) -> Option<f64> {
        let [x1, y1] = self.xy;
        let [x2, y2] = xy;
        match self.kind {
            ShapeKind::Circle(r) => {
                let d = distance(x1, y1, x2, y2);
                (d <= r * self.conversion).then_some(d)
            }
            ShapeKind::Box(w, h) => {
                let (width_m, height_m) = (w * self.conversion, h * self.conversion);
                if lat_distance(y2, y1) > height_m / 2.0 {
                    return None;
                }
                if distance(x2, y2, x1, y2) > width_m / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, x2, y2))
            }
        }
    }
}

/// The score range `[min, max)` of the members inside a box.
pub fn score_range(hash: Hash) -> (f64, f64) {
    let min = hash.align52();
    let max = Hash {
        bits: hash.bits + 1,
        step: hash.step,
    }
    .align52();
    (min as f64, max as f64)
}

fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine distance in meters (Redis' geohashGetDistance).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// A distance with four decimals, as Redis' fixedpoint_d2string: the value
/// times 10^4 rounded half-to-even (llrint), then placed around the point.
pub fn fmt_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = (d * 10000.0).round_ties_even();
    let neg = scaled < 0.0;
    let v = scaled.abs() as u64;
    format!(
        "{}{}.{:04}",
        if neg { "-" } else { "" },
        v / 10000,
        v % 10000
    )
}

/// Redis' pqsort: a quicksort (NetBSD's) that only sorts what lands in
/// positions `lrange..=rrange`, for `COUNT n` without a full sort. Its
/// exact order among equal distances is Redis', which a different sort
/// would not reproduce.
pub fn pqsort<T>(
    v: &mut [T],
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
    lrange: usize,
    rrange: usize,
) {
    pqsort_at(v, 0, v.len(), cmp, lrange, rrange);
}

fn med3<T>(
    v: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
) -> usize {
    use std::cmp::Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

fn pqsort_at<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> std::cmp::Ordering,
    lrange: usize,
    rrange: usize,
) {
    use std::cmp::Ordering::{Equal, Greater, Less};
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) == Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        // Indices as signed: pc may step below a.
        let mut pa = a + 1;
        let mut pb = a + 1;
        let mut pc = (a + n - 1) as isize;
        let mut pd = (a + n - 1) as isize;
        loop {
            while pb as isize <= pc {
                let r = cmp(&v[pb], &v[a]);
                if r == Greater {
                    break;
                }
                if r == Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let r = cmp(&v[pc as usize], &v[a]);
                if r == Less {
                    break;
                }
                if r == Equal {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = ((pd - pc) as usize).min(pn - pd as usize - 1);
        vecswap(v, pb, pn - r, r);
        let outside = |l: usize, r: usize| (lrange < l && rrange < l) || (lrange > r && rrange > r);
        let r = pb - pa;
        if r > 1 && !outside(a, a + r - 1) {
            pqsort_at(v, a, r, cmp, lrange, rrange);
        }
        let r = (pd - pc) as usize;
        if r > 1 {
            a = pn - r;
            n = r;
            if !outside(a, a + r - 1) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669
        // "Catania"; ZSCORE from Redis 7.0.
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(encode_score(15.087269, 37.502669), Some(3479447370796909));
        assert_eq!(encode_score(181.0, 0.0), None);
        assert_eq!(encode_score(0.0, 85.06), None);
        let [lon, lat] = decode_score(3479099956230698.0);
        assert!((lon - 13.361389).abs() < 1e-5 && (lat - 38.115556).abs() < 1e-5);
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3479447370796909.0), b"sqdtr74hyu0");
    }

    #[test]
    fn distances_format_like_redis() {
        let [a, b] = [
            decode_score(3479099956230698.0),
            decode_score(3479447370796909.0),
        ];
        assert_eq!(
            fmt_distance(distance(a[0], a[1], b[0], b[1])),
            "166274.1516"
        );
        assert_eq!(fmt_distance(0.0), "0.0000");
        assert_eq!(fmt_distance(0.00005), "0.0000");
        assert_eq!(fmt_distance(1.23456), "1.2346");
        assert_eq!(fmt_distance(-2.5), "-2.5000");
        assert_eq!(fmt_distance(12.5), "12.5000");
    }

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 2),
            (0x3ff_ffff, 0x155_5555),
            (12345, 67890),
        ] {
            let d = deinterleave64(interleave64(x, y));
            assert_eq!((d as u32, (d >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn pqsort_sorts_the_requested_range() {
        let mut rng = 0x2545f4914f6cdd1du64;
        for n in [0usize, 1, 5, 7, 8, 40, 41, 200] {
            let mut v: Vec<u32> = (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % 50) as u32
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            let k = n / 3;
            if n > 0 {
                pqsort(&mut v, &|a: &u32, b: &u32| a.cmp(b), 0, k);
                assert_eq!(&v[..=k], &sorted[..=k], "n={n}");
            }
        }
    }
}
