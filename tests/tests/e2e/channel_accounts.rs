use std::time::Duration;

use switchboard_e2e::{BOOTSTRAP_TOKEN, Switchboard, authorized, isolated_env};
use switchboard_proto::common::v1::Channel;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::channel_account_service_client::ChannelAccountServiceClient;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;
use switchboard_testkit::TestDatabase;
use tonic::Code;

use crate::auth::workspace_with_key;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

#[tokio::test]
async fn channel_accounts_keep_secrets_write_only_and_update_only_masked_fields() {
    let database = TestDatabase::create().await.unwrap();
    let switchboard = Switchboard::start(&[], &isolated_env(&database));
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let key = workspace_with_key(&switchboard, "ws_gamma").await;
    let mut accounts = ChannelAccountServiceClient::new(switchboard.channel().await);

    let created = accounts
        .create_channel_account(authorized(
            tenancy::CreateChannelAccountRequest {
                id: String::new(),
                channel: Channel::Telegram as i32,
                name: "Support bot".to_owned(),
                external_id: "7000000001".to_owned(),
                base_url: String::new(),
                settings: Default::default(),
                secrets: [
                    ("bot_token".to_owned(), "7000000001:AAE-super-secret".to_owned()),
                    ("webhook_secret".to_owned(), "whsec-very-secret".to_owned()),
                ]
                .into(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert!(created.id.starts_with("chacc_"));
    assert_eq!(created.secret_names, vec!["bot_token", "webhook_secret"]);
    assert!(
        !format!("{created:?}").contains("super-secret"),
        "secrets are never returned"
    );
    assert_eq!(created.revision, 1);

    // Only the masked field changes, although the update message carries other values.
    let updated = accounts
        .update_channel_account(authorized(
            tenancy::UpdateChannelAccountRequest {
                id: created.id.clone(),
                update: Some(tenancy::ChannelAccountUpdate {
                    name: "Support bot (EU)".to_owned(),
                    base_url: "https://evil.example".to_owned(),
                    secrets: [("webhook_secret".to_owned(), String::new())].into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name", "secrets"]),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(updated.name, "Support bot (EU)");
    assert_eq!(updated.base_url, "", "base_url was outside the mask");
    assert_eq!(
        updated.secret_names,
        vec!["bot_token"],
        "an empty secret value removes the secret"
    );
    assert_eq!(updated.revision, 2);

    for (paths, fragment) in [
        (vec![], "update_mask"),
        (vec!["revision"], "revision"),
        (vec!["base_url"], "base_url"),
    ] {
        let error = accounts
            .update_channel_account(authorized(
                tenancy::UpdateChannelAccountRequest {
                    id: created.id.clone(),
                    update: Some(tenancy::ChannelAccountUpdate {
                        base_url: "not a url".to_owned(),
                        ..Default::default()
                    }),
                    update_mask: mask(&paths),
                },
                &key,
            ))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{paths:?}");
        assert!(error.message().contains(fragment), "{}", error.message());
    }

    // One provider account belongs to one account record.
    let error = accounts
        .create_channel_account(authorized(
            tenancy::CreateChannelAccountRequest {
                channel: Channel::Telegram as i32,
                name: "Duplicate".to_owned(),
                external_id: "7000000001".to_owned(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);
    let error = accounts
        .create_channel_account(authorized(
            tenancy::CreateChannelAccountRequest {
                name: "No channel".to_owned(),
                external_id: "x".to_owned(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);

    let disabled = accounts
        .disable_channel_account(authorized(
            tenancy::DisableChannelAccountRequest {
                id: created.id.clone(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert!(!disabled.enabled);
}

#[tokio::test]
async fn the_channels_file_is_applied_at_start_and_again_without_changes() {
    let database = TestDatabase::create().await.unwrap();
    let directory = std::env::temp_dir().join(format!("sb-channels-{}", switchboard_testkit::unique_token()));
    std::fs::create_dir_all(&directory).unwrap();
    let token_file = directory.join("bot-token");
    std::fs::write(&token_file, "7000000002:AAE-file-secret\n").unwrap();
    let channels = directory.join("channels.yaml");
    std::fs::write(
        &channels,
        format!(
            "workspaces:\n  - id: ws_gitops\n    name: GitOps workspace\n    channel_accounts:\n      - id: chacc_gitops-wa\n        channel: whatsapp\n        name: GitOps number\n        external_id: \"555000111\"\n        base_url: http://127.0.0.1:9999/graph\n        secrets:\n          app_secret: {{env: GITOPS_APP_SECRET}}\n      - id: chacc_gitops-tg\n        channel: telegram\n        name: GitOps bot\n        external_id: \"7000000002\"\n        secrets:\n          bot_token: {{file: {}}}\n",
            token_file.display()
        ),
    )
    .unwrap();
    let mut env = isolated_env(&database);
    env.push((
        "SWITCHBOARD_CHANNELS_FILE".to_owned(),
        channels.display().to_string(),
    ));
    env.push(("GITOPS_APP_SECRET".to_owned(), "from-the-environment".to_owned()));

    let mut first = Switchboard::start(&[], &env);
    first.wait_ready_status(200, Duration::from_secs(15)).await;
    let accounts = read_gitops_accounts(&first).await;
    assert_eq!(accounts.len(), 2);
    let whatsapp = accounts
        .iter()
        .find(|account| account.id == "chacc_gitops-wa")
        .unwrap();
    assert_eq!(whatsapp.base_url, "http://127.0.0.1:9999/graph");
    assert_eq!(whatsapp.secret_names, vec!["app_secret"]);
    first.signal("TERM");
    assert_eq!(first.wait(Duration::from_secs(20)).await.code(), Some(0));

    // A restart applies the same file again: nothing changes.
    let second = Switchboard::start(&[], &env);
    second.wait_ready_status(200, Duration::from_secs(15)).await;
    let again = read_gitops_accounts(&second).await;
    assert_eq!(
        again
            .iter()
            .map(|account| (account.id.clone(), account.revision))
            .collect::<Vec<_>>(),
        accounts
            .iter()
            .map(|account| (account.id.clone(), account.revision))
            .collect::<Vec<_>>(),
    );
    assert!(
        second
            .logs()
            .iter()
            .any(|line| line.contains("applied channels file") && line.contains("\"changed\":0"))
    );
    std::fs::remove_dir_all(&directory).unwrap();
}

/// Lists the accounts of `ws_gitops` with a fresh member key.
async fn read_gitops_accounts(switchboard: &Switchboard) -> Vec<tenancy::ChannelAccount> {
    let channel = switchboard.channel().await;
    let mut admin = WorkspaceAdminServiceClient::new(channel.clone());
    let key = admin
        .create_api_key(authorized(
            tenancy::CreateApiKeyRequest {
                workspace_id: "ws_gitops".to_owned(),
                name: "reader".to_owned(),
                role: tenancy::ApiKeyRole::WorkspaceMember as i32,
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;
    ChannelAccountServiceClient::new(channel)
        .list_channel_accounts(authorized(tenancy::ListChannelAccountsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner()
        .accounts
}
