//! The staff calendar page (`/staff/calendario`): served with the strict CSP, no inline code, its
//! module scripts and styles reachable, and every name the staff scripts import actually exported
//! by the module they name (a missing export breaks a module page silently in the browser).

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
    for asset in [
        "/web/staff/calendar.js",
        "/web/staff/common.js",
        "/web/staff/strings.js",
        "/web/shared/i18n.js",
        "/web/shared/dom.js",
        "/web/shared/api.js",
        "/web/staff/calendar.css",
        "/web/staff/staff.css",
        "/web/shared/style.css",
    ] {
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

/// Every `import { a, b } from '…'` of the staff scripts names an export of that module.
#[tokio::test]
async fn staff_scripts_import_only_what_is_exported() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for script in [
        "/web/staff/calendar.js",
        "/web/staff/staff.js",
        "/web/staff/admin.js",
        "/web/staff/setup.js",
        "/web/staff/desk.js",
        "/web/staff/figures.js",
        "/web/citizen/sportello.js",
        "/web/room/walkin.js",
    ] {
        let (status, js) = get_text(&http, &format!("{}{script}", server.url())).await;
        assert_eq!(status, StatusCode::OK, "{script}");
        let mut imports = 0;
        let mut rest = js.as_str();
        while let Some(start) = rest.find("import {") {
            let statement = &rest[start + "import {".len()..];
            let (names, after) = statement.split_once("} from '").expect("import … from");
            let (module, after) = after.split_once('\'').expect("module name");
            rest = after;
            // Relative to the script's folder (`./x.js`, `../shared/x.js`).
            let mut url = reqwest::Url::parse(&format!("{}{script}", server.url())).unwrap();
            url = url.join(module).unwrap();
            let (status, exporter) = get_text(&http, url.as_str()).await;
            assert_eq!(status, StatusCode::OK, "{script} imports {module}");
            // `a as b` imports `a`.
            for name in names.split(',').filter_map(|n| n.split(" as ").next()).map(str::trim).filter(|n| !n.is_empty())
            {
                let exported =
                    ["export function ", "export async function ", "export const ", "export let ", "export class "]
                        .iter()
                        .any(|p| {
                            exporter.contains(&format!("{p}{name}(")) || exporter.contains(&format!("{p}{name} "))
                        });
                assert!(exported, "{script} imports {name}, which {module} does not export");
                imports += 1;
            }
        }
        assert!(imports > 0, "{script} imports nothing");
    }
}
