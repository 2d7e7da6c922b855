//! Bounded line reading and `DATA` decoding (terminator and dot-unstuffing).

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// What one bounded line read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// A whole line (ending in `\n`) is in the buffer.
    Line,
    /// The line was longer than allowed; it was consumed through its `\n` and dropped.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one line of at most `max` octets (its `\n` included) into `line`.
///
/// Memory stays bounded whatever the peer sends: the excess of an overlong line is
/// discarded as it arrives.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(LineRead::Eof);
        }
        let (chunk, complete) = match available.iter().position(|&byte| byte == b'\n') {
            Some(newline) => (&available[..=newline], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long && line.len() + used <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        reader.consume(used);
        if complete {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// Collects a message's lines after `354`, per RFC 5321 §4.5.2.
#[derive(Debug)]
pub(crate) struct DataReader {
    data: Vec<u8>,
    size: u64,
    max_size: usize,
    previous_ended_with_crlf: bool,
    too_large: bool,
    line_too_long: bool,
}

/// The state after one line of message data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataStep {
    /// More lines follow.
    More,
    /// The `<CRLF>.<CRLF>` terminator was read.
    End,
}

impl DataReader {
    /// An empty message that may grow up to `max_size` octets.
    pub(crate) fn new(max_size: usize) -> Self {
        Self {
            data: Vec::new(),
            size: 0,
            max_size,
            previous_ended_with_crlf: true,
            too_large: false,
            line_too_long: false,
        }
    }

    /// Takes one line as read by [`read_line`].
    ///
    /// Only `.` `CRLF` after a line that ended in `CRLF` ends the data (a bare `LF` never
    /// does, which keeps SMTP smuggling out); any other line starting with `.` loses that dot.
    pub(crate) fn push(&mut self, read: LineRead, line: &[u8]) -> DataStep {
        if read == LineRead::TooLong {
            self.line_too_long = true;
            self.previous_ended_with_crlf = true;
            return DataStep::More;
        }
        if line == b".\r\n" && self.previous_ended_with_crlf {
            return DataStep::End;
        }
        self.previous_ended_with_crlf = line.ends_with(b"\r\n");
        let content = line.strip_prefix(b".").unwrap_or(line);
        self.size += u64::try_from(content.len()).unwrap_or(u64::MAX);
        if self.too_large || self.data.len() + content.len() > self.max_size {
            self.too_large = true;
            self.data = Vec::new();
        } else {
            self.data.extend_from_slice(content);
        }
        DataStep::More
    }

    /// True when the message went over the size limit (its data was dropped).
    pub(crate) fn too_large(&self) -> bool {
        self.too_large
    }

    /// True when a line went over the line-length limit.
    pub(crate) fn line_too_long(&self) -> bool {
        self.line_too_long
    }

    /// The unstuffed message and its size in octets.
    pub(crate) fn finish(self) -> (Vec<u8>, u64) {
        (self.data, self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(LineRead, Vec<u8>)> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        loop {
            let read = read_line(&mut reader, &mut line, max).await.unwrap();
            out.push((read, line.clone()));
            if read == LineRead::Eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn lines_are_bounded_and_split_on_lf() {
        let out = lines(b"EHLO a\r\n0123456789abcdef\r\nNOOP\r\npartial", 10).await;
        let reads: Vec<LineRead> = out.iter().map(|(read, _)| *read).collect();
        assert_eq!(
            reads,
            [LineRead::Line, LineRead::TooLong, LineRead::Line, LineRead::Eof]
        );
        assert_eq!(out[0].1, b"EHLO a\r\n");
        assert_eq!(out[2].1, b"NOOP\r\n");
    }

    fn feed(input: &[&[u8]], max: usize) -> (DataReader, DataStep) {
        let mut data = DataReader::new(max);
        let mut step = DataStep::More;
        for line in input {
            step = data.push(LineRead::Line, line);
            if step == DataStep::End {
                break;
            }
        }
        (data, step)
    }

    #[test]
    fn dots_are_unstuffed_and_only_crlf_dot_crlf_ends_the_data() {
        let (data, step) = feed(
            &[
                b"Subject: x\r\n",
                b"\r\n",
                b"..leading dot\r\n",
                b"a\n",
                b".\r\n",
                b".\r\n",
            ],
            1000,
        );
        assert_eq!(step, DataStep::End);
        let (bytes, size) = data.finish();
        assert_eq!(bytes, b"Subject: x\r\n\r\n.leading dot\r\na\n\r\n");
        assert_eq!(size, 32);
    }

    #[test]
    fn an_oversized_message_is_read_to_its_end_and_flagged() {
        let (data, step) = feed(&[b"0123456789\r\n", b"0123456789\r\n", b".\r\n"], 15);
        assert_eq!(step, DataStep::End);
        assert!(data.too_large());
        assert_eq!(data.finish(), (Vec::new(), 24));
    }
}
