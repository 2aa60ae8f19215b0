//! The catalog's tables: environments, projects, deployments and ports, as the last
//! applied catalog left them. They are rewritten in the journal's transaction (see
//! [`CatalogRows::write_in`]), so the tables and the journal never disagree, and read
//! once at start, so a restart runs the catalog it stopped with.

use futures::FutureExt;
use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryOrder, Set,
};

use pharos_core::domain::{Catalog, Deployment};

use crate::QueryError;
use crate::entities::{deployment, environment, port_allocation, project};
use crate::rows;

#[derive(Clone)]
pub struct CatalogRows {
    db: DatabaseConnection,
}

impl CatalogRows {
    pub fn new(db: DatabaseConnection) -> CatalogRows {
        CatalogRows { db }
    }

    /// The catalog the previous run stored; empty when none was.
    pub async fn load(&self) -> Result<Catalog, QueryError> {
        let db = &self.db;
        let environments = environment::Entity::find()
            .order_by_asc(environment::Column::Position)
            .all(db)
            .await?
            .into_iter()
            .map(rows::environment)
            .collect();
        let deployments: Vec<Deployment> = deployment::Entity::find()
            .order_by_asc(deployment::Column::Position)
            .all(db)
            .await?
            .into_iter()
            .map(rows::deployment)
            .collect::<Result<_, _>>()
            .map_err(QueryError::Corrupt)?;
        let projects = project::Entity::find()
            .order_by_asc(project::Column::Position)
            .all(db)
            .await?
            .into_iter()
            .map(|row| rows::project(row, &deployments))
            .collect();
        let ports = port_allocation::Entity::find()
            .order_by_asc(port_allocation::Column::Environment)
            .order_by_asc(port_allocation::Column::Port)
            .all(db)
            .await?
            .into_iter()
            .map(rows::port_allocation)
            .collect::<Result<_, _>>()
            .map_err(QueryError::Corrupt)?;
        Ok(Catalog {
            environments,
            projects,
            deployments,
            ports,
            metrics: Default::default(),
        })
    }

    /// Replaces the tables' rows with `catalog`, inside the journal writer's transaction:
    /// pass it to [`WriterHandle::append_with`](crate::journal::WriterHandle::append_with)
    /// as `Box::new(move |txn| CatalogRows::write_in(txn, catalog))`.
    pub fn write_in(
        txn: &DatabaseTransaction,
        catalog: Catalog,
    ) -> BoxFuture<'_, Result<(), DbErr>> {
        write(txn, catalog).boxed()
    }
}

async fn write<C: ConnectionTrait>(txn: &C, catalog: Catalog) -> Result<(), DbErr> {
    port_allocation::Entity::delete_many().exec(txn).await?;
    deployment::Entity::delete_many().exec(txn).await?;
    project::Entity::delete_many().exec(txn).await?;
    environment::Entity::delete_many().exec(txn).await?;
    for (position, env) in catalog.environments.iter().enumerate() {
        environment::Entity::insert(environment::ActiveModel {
            id: Set(env.id.clone()),
            name: Set(env.name.clone()),
            port_range_start: Set(env.port_range.map(|r| i32::from(r.start))),
            port_range_end: Set(env.port_range.map(|r| i32::from(r.end))),
            position: Set(position as i32),
        })
        .exec(txn)
        .await?;
    }
    for (position, p) in catalog.projects.iter().enumerate() {
        project::Entity::insert(project::ActiveModel {
            id: Set(p.id.clone()),
            name: Set(p.name.clone()),
            project_type: Set(p.project_type.clone()),
            subdomain: Set(p.subdomain.clone()),
            description: Set(p.description.clone()),
            position: Set(position as i32),
        })
        .exec(txn)
        .await?;
    }
    for (position, d) in catalog.deployments.iter().enumerate() {
        deployment::Entity::insert(deployment::ActiveModel {
            id: Set(d.id()),
            project_id: Set(d.project_id.clone()),
            environment: Set(d.environment.clone()),
            spec: Set(serde_json::to_string(d).map_err(|err| DbErr::Custom(err.to_string()))?),
            position: Set(position as i32),
        })
        .exec(txn)
        .await?;
    }
    for port in &catalog.ports {
        port_allocation::Entity::insert(port_allocation::ActiveModel {
            environment: Set(port.environment.clone()),
            port: Set(i32::from(port.port)),
            port_type: Set(port.port_type.as_str().to_owned()),
            project_id: Set(port.project_id.clone()),
            service: Set(port.service.clone()),
        })
        .exec(txn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pharos_core::domain::{Environment, PortAllocation, PortRange, PortType, Project};
    use sea_orm::TransactionTrait;

    use super::*;

    #[tokio::test]
    async fn a_written_catalog_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::connect(&crate::default_url(dir.path()))
            .await
            .unwrap();
        crate::migrate(&db).await.unwrap();
        let rows = CatalogRows::new(db.clone());
        assert_eq!(rows.load().await.unwrap(), Catalog::default());

        let catalog = Catalog {
            environments: vec![
                Environment {
                    id: "prod".into(),
                    name: "Production".into(),
                    port_range: Some(PortRange {
                        start: 8000,
                        end: 8099,
                    }),
                },
                Environment {
                    id: "dev".into(),
                    name: "Development".into(),
                    port_range: None,
                },
            ],
            projects: vec![Project {
                id: "shop".into(),
                name: "Shop".into(),
                project_type: "web".into(),
                subdomain: "shop".into(),
                description: String::new(),
                environments: Vec::new(),
            }],
            deployments: Vec::new(),
            ports: vec![PortAllocation {
                environment: "prod".into(),
                port: 8001,
                port_type: PortType::Http,
                project_id: "shop".into(),
                service: "web".into(),
            }],
            metrics: Default::default(),
        };
        for _ in 0..2 {
            let txn = db.begin().await.unwrap();
            CatalogRows::write_in(&txn, catalog.clone()).await.unwrap();
            txn.commit().await.unwrap();
        }
        assert_eq!(rows.load().await.unwrap(), catalog, "rewritten, not added");
    }
}
