//! A corpus of JWT attacks, each tried in every presentation a token has (API bearer header;
//! `/ws/web` bearer header, `jwt.` subprotocol, `session` cookie, `token` query): forged
//! algorithms, key confusion, foreign keys behind `kid`/`jku`, wrong claims, expiry,
//! tampering and oversized tokens. None may get in; the genuine token does, everywhere.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetgate_actors::identity::Role;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::api_client::call_raw;
use crate::support::{TestServer, spawn_app};
use crate::web_client::user;

/// The server's JWT secret, read from its secrets file.
fn server_secret(server: &TestServer) -> Vec<u8> {
    let file = std::fs::read_to_string(server.settings.storage.data_dir.join("secrets.env"))
        .expect("secrets file");
    file.lines()
        .find_map(|line| line.strip_prefix("FLEETGATE_JWT_SECRET="))
        .expect("JWT secret")
        .trim()
        .as_bytes()
        .to_vec()
}

/// MAC algorithms a forger may use.
#[derive(Clone, Copy)]
enum MacKind {
    Sha256,
    Sha384,
    Sha512,
}

fn mac(kind: MacKind, key: &[u8], input: &str) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], input: &str) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(input.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
    match kind {
        MacKind::Sha256 => run::<Hmac<Sha256>>(key, input),
        MacKind::Sha384 => run::<Hmac<Sha384>>(key, input),
        MacKind::Sha512 => run::<Hmac<Sha512>>(key, input),
    }
}

/// A token with `header` and `claims`, signed with `kind` under `key`.
fn token(header: &Value, claims: &Value, kind: MacKind, key: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(kind, key, &input));
    format!("{input}.{signature}")
}

/// Every attack, named, built against `claims` (valid for a real admin) and the server `key`.
fn corpus(claims: &Value, key: &[u8]) -> Vec<(String, String)> {
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let with = |field: &str, value: Value| {
        let mut changed = claims.clone();
        changed[field] = value;
        changed
    };
    let now = chrono::Utc::now().timestamp();
    let attacker = b"attacker-controlled-key-attacker".as_slice();
    let mut attacks = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = token(
            &json!({"alg": alg, "typ": "JWT"}),
            claims,
            MacKind::Sha256,
            key,
        );
        let (input, _) = unsigned.rsplit_once('.').expect("three parts");
        attacks.push((format!("alg {alg}, empty signature"), format!("{input}.")));
        attacks.push((format!("alg {alg}, no signature part"), input.to_owned()));
        attacks.push((format!("alg {alg}, a signature anyway"), unsigned.clone()));
    }
    for (alg, kind) in [("HS384", MacKind::Sha384), ("HS512", MacKind::Sha512)] {
        attacks.push((
            format!("{alg} with the server key"),
            token(&json!({"alg": alg}), claims, kind, key),
        ));
    }
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256"] {
        attacks.push((
            format!("{alg} header, HMAC with the server key as public key"),
            token(&json!({"alg": alg}), claims, MacKind::Sha256, key),
        ));
    }
    attacks.push((
        "kid pointing at an empty file, signed with an empty key".into(),
        token(
            &json!({"alg": "HS256", "kid": "../../../../dev/null"}),
            claims,
            MacKind::Sha256,
            b"",
        ),
    ));
    for header in [
        json!({"alg": "HS256", "kid": "attacker"}),
        json!({"alg": "HS256", "jku": "http://127.0.0.1:1/jwks.json"}),
        json!({"alg": "HS256", "x5u": "http://127.0.0.1:1/cert.pem"}),
        json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(attacker)}}),
    ] {
        attacks.push((
            format!("{header} signed with the attacker's key"),
            token(&header, claims, MacKind::Sha256, attacker),
        ));
    }
    let wrong_claims = [
        ("wrong issuer", with("iss", json!("someone-else"))),
        ("wrong audience", with("aud", json!("another-service"))),
        ("expired", with("exp", json!(now - 3600))),
        (
            "not valid before an hour from now",
            with("nbf", json!(now + 3600)),
        ),
        ("no expiry", {
            let mut c = claims.clone();
            c.as_object_mut().expect("object").remove("exp");
            c
        }),
        (
            "expiry as a string",
            with("exp", json!((now + 600).to_string())),
        ),
        ("unknown role", with("role", json!("root"))),
        ("empty subject", with("sub", json!(""))),
    ];
    for (name, changed) in wrong_claims {
        attacks.push((name.into(), token(&hs256, &changed, MacKind::Sha256, key)));
    }
    let genuine = token(&hs256, claims, MacKind::Sha256, key);
    let (input, signature) = genuine.rsplit_once('.').expect("three parts");
    let mut flipped = signature.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    attacks.push((
        "tampered signature".into(),
        format!("{input}.{}", String::from_utf8(flipped).expect("ascii")),
    ));
    let promoted = token(
        &hs256,
        &with("exp", json!(now + 86_400 * 365)),
        MacKind::Sha256,
        attacker,
    );
    let (promoted_input, _) = promoted.rsplit_once('.').expect("three parts");
    attacks.push((
        "expiry extended under the genuine signature".into(),
        format!("{promoted_input}.{signature}"),
    ));
    attacks.push(("truncated".into(), genuine[..genuine.len() - 5].to_owned()));
    attacks.push(("a fourth part".into(), format!("{genuine}.AAAA")));
    attacks.push((
        "signature of another key".into(),
        token(&hs256, claims, MacKind::Sha256, attacker),
    ));
    attacks.push(("not a JWT".into(), "definitely-not-a-token".into()));
    let padding = "x".repeat(30 * 1024);
    attacks.push((
        "oversized token (30 KiB of claims)".into(),
        token(
            &hs256,
            &with("pad", json!(padding)),
            MacKind::Sha256,
            attacker,
        ),
    ));
    attacks
}

/// How a token is presented on `/ws/web`.
const PRESENTATIONS: [&str; 4] = ["bearer", "subprotocol", "cookie", "query"];

/// The HTTP status of a `/ws/web` upgrade presenting `token` as `how` (0: connection refused).
async fn upgrade(server: &TestServer, how: &str, token: &str) -> u16 {
    let path = if how == "query" {
        format!("/ws/web?token={token}")
    } else {
        "/ws/web".into()
    };
    let mut request = server.ws_url(&path).into_client_request().expect("request");
    let header = match how {
        "bearer" => Some(("authorization", format!("Bearer {token}"))),
        "subprotocol" => Some(("sec-websocket-protocol", format!("jwt.{token}"))),
        "cookie" => Some(("cookie", format!("session={token}"))),
        _ => None,
    };
    if let Some((name, value)) = header {
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).expect("header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_socket, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(_) => 0,
    }
}

#[actix_web::test]
async fn no_forged_or_invalid_token_gets_in_through_any_presentation() {
    let server = spawn_app().await;
    let (admin_id, _) = user(&server, Role::Admin, &[]).await;
    let key = server_secret(&server);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "fleetgate", "aud": "fleetgate-clients", "exp": now + 600, "iat": now,
        "sub": admin_id, "role": "admin",
    });
    let genuine = token(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
        MacKind::Sha256,
        &key,
    );
    for how in PRESENTATIONS {
        assert_eq!(
            upgrade(&server, how, &genuine).await,
            101,
            "the genuine token, {how}"
        );
    }
    let (status, _, _) = call_raw(&server, "GET", "/machines", Some(&genuine), None).await;
    assert_eq!(status, 200, "the genuine token on the API");

    let attacks = corpus(&claims, &key);
    let mut tried = 0;
    for (name, attack) in &attacks {
        let (status, _, _) = call_raw(&server, "GET", "/machines", Some(attack), None).await;
        assert!((400..500).contains(&status), "API let in {name}: {status}");
        tried += 1;
        for how in PRESENTATIONS {
            let status = upgrade(&server, how, attack).await;
            assert_ne!(status, 101, "/ws/web let in {name} ({how})");
            tried += 1;
        }
    }
    eprintln!(
        "hostile-input JWT corpus: {} attacks x 5 presentations = {tried} inputs, all refused",
        attacks.len()
    );
    server.stop().await;
}
