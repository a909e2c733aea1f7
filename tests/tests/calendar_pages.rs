//! The staff calendar page (`/staff/calendario`): served with the strict CSP, no inline code, its
//! module scripts and styles reachable, and every name it imports from the shared staff module
//! actually exported there (a missing export breaks a module page silently in the browser).

use reqwest::StatusCode;
use sportello_tests::server::TestServer;

async fn get_text(http: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = http.get(url).send().await.expect("request");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn calendar_page_is_served_with_its_scripts() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let response = http.get(format!("{}/staff/calendario", server.url())).send().await.expect("page");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    for marker in [
        "<script type=\"module\" src=\"/web/staff/calendar.js\"></script>",
        "/web/staff/calendar.css",
        "id=\"month-grid\"",
        "<caption id=\"month-caption\">",
        "id=\"pattern-form\"",
        "id=\"follow-office\"",
        "id=\"absence-form\"",
        "id=\"source-form\"",
        "id=\"upload-form\"",
        "id=\"feeds-rotate\"",
        "role=\"alert\"",
        "href=\"/staff\"",
    ] {
        assert!(html.contains(marker), "the page lacks {marker}");
    }
    // CSP forbids inline code: no inline scripts, handlers or style attributes.
    assert!(!html.contains(" style=") && !html.contains(" onclick=") && !html.contains("<script>"));
    assert!(!html.contains("<style"), "inline style element");
    for asset in ["/web/staff/calendar.js", "/web/staff/staff-i18n.js", "/web/staff/calendar.css", "/web/staff/staff.css", "/web/shared/style.css"] {
        let (status, _) = get_text(&http, &format!("{}{asset}", server.url())).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
    }
}

#[tokio::test]
async fn the_desk_links_to_the_calendar() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (status, html) = get_text(&http, &format!("{}/staff", server.url())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/staff/calendario\""), "no link to the calendar on the desk");
    assert!(html.contains("id=\"ovo-list\""), "no list of the offices' virtual offices");
}

/// Every `import { a, b } from './staff-i18n.js'` of the staff scripts names an export of that module.
#[tokio::test]
async fn staff_scripts_import_only_what_is_exported() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (_, shared) = get_text(&http, &format!("{}/web/staff/staff-i18n.js", server.url())).await;
    let exported = |name: &str| {
        ["export function ", "export async function ", "export const ", "export let "]
            .iter()
            .any(|p| shared.contains(&format!("{p}{name}(")) || shared.contains(&format!("{p}{name} ")))
    };
    for script in ["/web/staff/calendar.js", "/web/staff/staff.js"] {
        let (status, js) = get_text(&http, &format!("{}{script}", server.url())).await;
        assert_eq!(status, StatusCode::OK, "{script}");
        let start = js.find("import {").unwrap_or_else(|| panic!("{script} imports nothing"));
        let end = start + js[start..].find("} from './staff-i18n.js'").expect("import from staff-i18n.js");
        let names: Vec<&str> =
            js[start + "import {".len()..end].split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        assert!(!names.is_empty(), "{script}");
        for name in names {
            assert!(exported(name), "{script} imports {name}, which staff-i18n.js does not export");
        }
    }
}
