//! Java KeyStore (JKS) files, which librdkafka cannot read: the trusted certificates and the
//! private key with its chain, turned into PEM in memory. Read-only, no write support.
//!
//! Layout: magic 0xFEEDFEED, version 1 or 2, entry count, entries (1 = private key, 2 = trusted
//! certificate), then a SHA-1 over password ‖ "Mighty Aphrodite" ‖ everything before it. A private
//! key is protected by Sun's "KeyProtector": salt(20) ‖ key XOR keystream ‖ SHA-1 check(20), where
//! the keystream is the chain of SHA-1(password ‖ previous digest) starting from the salt.

use openssl::sha::sha1;

const MAGIC: u32 = 0xFEED_FEED;
const INTEGRITY_SALT: &[u8] = b"Mighty Aphrodite";
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01]; // 1.3.6.1.4.1.42.2.17.1.1

/// Why a JKS file could not be used; never holds key material or passwords.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JksError {
    #[error("not a JKS keystore")]
    NotJks,
    #[error("truncated or corrupt JKS keystore")]
    Corrupt,
    #[error("wrong keystore password, or the keystore was modified")]
    StorePassword,
    #[error("wrong key password")]
    KeyPassword,
    #[error("the private key uses a protection algorithm other than JKS's own")]
    UnsupportedKeyProtection,
}

/// What a JKS file holds, as DER.
#[derive(Default)]
pub(crate) struct JksContents {
    pub trusted_certificates: Vec<Vec<u8>>,
    /// Private key entries: the protected key and its certificate chain (leaf first).
    pub private_keys: Vec<ProtectedKey>,
}

pub(crate) struct ProtectedKey {
    protected: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

pub(crate) fn is_jks(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == MAGIC
}

/// Parses a JKS file; with a password, its integrity digest is checked too.
pub(crate) fn parse(bytes: &[u8], store_password: Option<&str>) -> Result<JksContents, JksError> {
    if !is_jks(bytes) {
        return Err(JksError::NotJks);
    }
    if bytes.len() < 12 + 20 {
        return Err(JksError::Corrupt);
    }
    let (body, digest) = bytes.split_at(bytes.len() - 20);
    if let Some(password) = store_password {
        let mut input = password_bytes(password);
        input.extend_from_slice(INTEGRITY_SALT);
        input.extend_from_slice(body);
        if sha1(&input) != digest {
            return Err(JksError::StorePassword);
        }
    }
    let mut reader = Reader { bytes: body, position: 4 };
    let version = reader.u32()?;
    if version != 1 && version != 2 {
        return Err(JksError::Corrupt);
    }
    let count = reader.u32()?;
    let mut contents = JksContents::default();
    for _ in 0..count {
        let tag = reader.u32()?;
        reader.utf()?; // alias
        reader.take(8)?; // creation time
        match tag {
            1 => {
                let length = reader.u32()? as usize;
                let protected = reader.take(length)?.to_vec();
                let chain_length = reader.u32()?;
                let mut chain = Vec::new();
                for _ in 0..chain_length {
                    chain.push(reader.certificate(version)?);
                }
                contents.private_keys.push(ProtectedKey { protected, chain });
            }
            2 => contents.trusted_certificates.push(reader.certificate(version)?),
            _ => return Err(JksError::Corrupt),
        }
    }
    Ok(contents)
}

impl ProtectedKey {
    /// The private key as PKCS#8 DER.
    pub fn recover(&self, key_password: &str) -> Result<Vec<u8>, JksError> {
        let protected = encrypted_data(&self.protected)?;
        if protected.len() < 40 {
            return Err(JksError::Corrupt);
        }
        let (salt, rest) = protected.split_at(20);
        let (encrypted, check) = rest.split_at(rest.len() - 20);
        let password = password_bytes(key_password);
        let mut keystream = Vec::with_capacity(encrypted.len() + 20);
        let mut digest = salt.to_vec();
        while keystream.len() < encrypted.len() {
            let mut input = password.clone();
            input.extend_from_slice(&digest);
            digest = sha1(&input).to_vec();
            keystream.extend_from_slice(&digest);
        }
        let plain: Vec<u8> = encrypted.iter().zip(&keystream).map(|(a, b)| a ^ b).collect();
        let mut input = password;
        input.extend_from_slice(&plain);
        if sha1(&input) != check {
            return Err(JksError::KeyPassword);
        }
        Ok(plain)
    }
}

/// Java's `char[]` password as the big-endian UTF-16 bytes that JKS hashes.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// `EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }` → the octets,
/// after checking the algorithm is JKS's key protector.
fn encrypted_data(der: &[u8]) -> Result<&[u8], JksError> {
    let mut outer = Der { bytes: der };
    let mut info = Der { bytes: outer.element(0x30)? };
    let mut algorithm = Der { bytes: info.element(0x30)? };
    if algorithm.element(0x06)? != KEY_PROTECTOR_OID {
        return Err(JksError::UnsupportedKeyProtection);
    }
    info.element(0x04)
}

struct Der<'a> {
    bytes: &'a [u8],
}

impl<'a> Der<'a> {
    /// The content of the next element, which must have `tag`.
    fn element(&mut self, tag: u8) -> Result<&'a [u8], JksError> {
        let (&found, rest) = self.bytes.split_first().ok_or(JksError::Corrupt)?;
        if found != tag {
            return Err(JksError::Corrupt);
        }
        let (&first, mut rest) = rest.split_first().ok_or(JksError::Corrupt)?;
        let length = if first < 0x80 {
            first as usize
        } else {
            let count = (first & 0x7f) as usize;
            if count == 0 || count > 4 || rest.len() < count {
                return Err(JksError::Corrupt);
            }
            let length = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            rest = &rest[count..];
            length
        };
        if rest.len() < length {
            return Err(JksError::Corrupt);
        }
        let (content, remaining) = rest.split_at(length);
        self.bytes = remaining;
        Ok(content)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], JksError> {
        let end = self.position.checked_add(count).filter(|end| *end <= self.bytes.len()).ok_or(JksError::Corrupt)?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn utf(&mut self) -> Result<&'a [u8], JksError> {
        let length = self.take(2)?;
        self.take(u16::from_be_bytes([length[0], length[1]]) as usize)
    }

    fn certificate(&mut self, version: u32) -> Result<Vec<u8>, JksError> {
        if version == 2 {
            self.utf()?; // certificate type, "X.509"
        }
        let length = self.u32()? as usize;
        Ok(self.take(length)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(matches!(parse(b"nope", None), Err(JksError::NotJks)));
        let mut truncated = MAGIC.to_be_bytes().to_vec();
        truncated.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 9]);
        truncated.extend_from_slice(&[0; 20]);
        assert!(matches!(parse(&truncated, None), Err(JksError::Corrupt)));
        assert!(matches!(parse(&truncated, Some("x")), Err(JksError::StorePassword)));
    }

    #[test]
    fn java_passwords_are_utf16_big_endian() {
        assert_eq!(password_bytes("ab"), vec![0, b'a', 0, b'b']);
    }
}
