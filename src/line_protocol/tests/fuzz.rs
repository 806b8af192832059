//! No byte input makes the parser panic (seeded xorshift, no extra crate).

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_input_makes_the_parser_panic() {
    const ALPHABET: &[u8] = b" ,=\"\\\n\r\t#-+.eEiutfTF0123456789mvw\xc2\xb5\xff\x80";
    const SEEDS: [&str; 4] = [
        "water,meter=m001 liters=1 1672556400123456789",
        r#"m\ x,t\,a=v\=b f="s \"q\" \\",g=-1.5e3,h=12i,i=3u,j=t -7"#,
        "# c\r\n\nw v=1\nw,t=a v=.5\n",
        "µ,ü=ö 💧=1",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut input = Vec::new();
    for round in 0..100_000 {
        input.clear();
        if round % 2 == 0 {
            let len = rng.below(48);
            input.extend((0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]));
        } else {
            input.extend_from_slice(SEEDS[rng.below(SEEDS.len())].as_bytes());
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(input.len() + 1);
                let byte = ALPHABET[rng.below(ALPHABET.len())];
                match rng.below(3) {
                    0 => input.insert(at, byte),
                    1 if at < input.len() => input[at] = byte,
                    _ if at < input.len() => drop(input.remove(at)),
                    _ => input.push(byte),
                }
            }
        }
        let lines = input.iter().filter(|&&b| b == b'\n').count() + 1;
        let mut last_line = 0;
        for result in parse_lines(&input) {
            let line_no = match result {
                Ok(p) => {
                    assert!(!p.fields.is_empty() && !p.measurement.is_empty());
                    last_line + 1
                }
                Err(e) => {
                    assert!(e.error.column() >= 1 && !e.to_string().is_empty());
                    e.line_no
                }
            };
            assert!(line_no > last_line && line_no <= lines, "{input:?}");
            last_line = line_no.max(last_line);
        }
    }
}
