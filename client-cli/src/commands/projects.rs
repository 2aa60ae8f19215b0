//! `pharos projects [--env ENV]`.

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{Output, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only projects deployed in this environment
    #[arg(long = "env")]
    environment: Option<String>,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut catalog = client.catalog().await?;
    let mut projects = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = catalog
            .list_projects(pb::ListProjectsRequest {
                environment: args.environment.clone().unwrap_or_default(),
                page_size: 1000,
                page_token,
            })
            .await
            .map_err(|status| client.error(&status))?
            .into_inner();
        projects.extend(page.projects);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let value = json!({ "projects": projects.iter().map(project_json).collect::<Vec<_>>() });
    out.emit(&value, |out| {
        if projects.is_empty() {
            return "no projects\n".to_owned();
        }
        let mut table =
            Table::new(&["ID", "NAME", "TYPE", "ENVIRONMENTS"]).wide(&["SUBDOMAIN", "DESCRIPTION"]);
        for project in &projects {
            table.row(vec![
                project.id.as_str().into(),
                project.name.as_str().into(),
                project.r#type.as_str().into(),
                project.environments.join(",").into(),
                project.subdomain.as_str().into(),
                super::status::first_line(&project.description).into(),
            ]);
        }
        table.render(out)
    });
    Ok(())
}

pub fn project_json(project: &pb::Project) -> serde_json::Value {
    json!({
        "id": project.id,
        "name": project.name,
        "type": project.r#type,
        "subdomain": project.subdomain,
        "description": project.description,
        "environments": project.environments,
    })
}
