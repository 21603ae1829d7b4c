//! The Python literals an NPY header is written in, and a parser for the few that
//! `numpy.save` writes.

/// The Python literals an NPY header is written in.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Py {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// A parser for the few Python literals `numpy.save` writes. Nesting is bounded so a
/// hostile header cannot exhaust the stack.
pub(super) struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> PyParser<'a> {
    const MAX_DEPTH: usize = 32;

    pub(super) fn new(s: &'a str) -> Self {
        PyParser {
            s: s.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    pub(super) fn parse_all(mut self) -> Result<Py, &'static str> {
        let value = self.value()?;
        self.skip_space();
        if self.pos < self.s.len() {
            return Err("text after the dict");
        }
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Py, &'static str> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.sequence(b'}', true).map(|items| {
                let mut items = items.into_iter();
                let mut pairs = Vec::new();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    pairs.push((key, value));
                }
                Py::Dict(pairs)
            }),
            Some(b'(') => self.sequence(b')', false).map(Py::Tuple),
            Some(b'[') => self.sequence(b']', false).map(Py::List),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'0'..=b'9') => self.int(),
            Some(_) => self.word(),
            None => Err("unexpected end"),
        }
    }

    /// Comma-separated items up to `close`, a trailing comma allowed; for a dict, each
    /// item is followed by `:` and a value, and both go into the list.
    fn sequence(&mut self, close: u8, dict: bool) -> Result<Vec<Py>, &'static str> {
        self.depth += 1;
        if self.depth > Self::MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.pos += 1;
                break;
            }
            items.push(self.value()?);
            if dict {
                self.skip_space();
                if self.peek() != Some(b':') {
                    return Err("a dict key without ':'");
                }
                self.pos += 1;
                items.push(self.value()?);
            }
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err("a missing comma or bracket"),
            }
        }
        self.depth -= 1;
        Ok(items)
    }

    fn string(&mut self, quote: u8) -> Result<Py, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("an unterminated string"),
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.peek().ok_or("an unterminated string")?);
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
        String::from_utf8(out)
            .map(Py::Str)
            .map_err(|_| "a string that is not text")
    }

    fn int(&mut self) -> Result<Py, &'static str> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .map_err(|_| "a bad number")?;
        let value = digits.parse().map_err(|_| "a number too large")?;
        // Python 2 wrote shapes like (3L, 4L).
        if self.peek() == Some(b'L') {
            self.pos += 1;
        }
        Ok(Py::Int(value))
    }

    fn word(&mut self) -> Result<Py, &'static str> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        match self.s.get(start..self.pos) {
            Some(b"True") => Ok(Py::Bool(true)),
            Some(b"False") => Ok(Py::Bool(false)),
            Some(b"None") => Ok(Py::None),
            _ => Err("an unexpected token"),
        }
    }
}
