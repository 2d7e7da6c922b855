use std::time::Duration;

use switchboard_e2e::{BOOTSTRAP_TOKEN, Switchboard, authorized, isolated_env};
use switchboard_proto::common::v1::Channel;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::channel_account_service_client::ChannelAccountServiceClient;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;
use switchboard_testkit::TestDatabase;
use tonic::Code;

/// Creates a workspace and a workspace-admin key for it through the bootstrap token.
pub async fn workspace_with_key(switchboard: &Switchboard, id: &str) -> String {
    let mut admin = WorkspaceAdminServiceClient::new(switchboard.channel().await);
    admin
        .create_workspace(authorized(
            tenancy::CreateWorkspaceRequest {
                id: id.to_owned(),
                name: format!("Workspace {id}"),
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap();
    admin
        .create_api_key(authorized(
            tenancy::CreateApiKeyRequest {
                workspace_id: id.to_owned(),
                name: "test key".to_owned(),
                role: tenancy::ApiKeyRole::WorkspaceAdmin as i32,
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .token
}

fn new_account(id: &str, external_id: &str) -> tenancy::CreateChannelAccountRequest {
    tenancy::CreateChannelAccountRequest {
        id: id.to_owned(),
        channel: Channel::Whatsapp as i32,
        name: "Main number".to_owned(),
        external_id: external_id.to_owned(),
        base_url: "https://graph.facebook.com/v23.0".to_owned(),
        settings: [("display_phone_number".to_owned(), "15550783881".to_owned())].into(),
        secrets: [("app_secret".to_owned(), "s3cr3t-app-secret".to_owned())].into(),
    }
}

#[tokio::test]
async fn calls_need_a_valid_key_and_a_key_of_workspace_a_never_reaches_workspace_b() {
    let database = TestDatabase::create().await.unwrap();
    let switchboard = Switchboard::start(&[], &isolated_env(&database));
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let mut accounts = ChannelAccountServiceClient::new(switchboard.channel().await);
    let mut admin = WorkspaceAdminServiceClient::new(switchboard.channel().await);

    // No key, a malformed key, a well-formed unknown key.
    let error = accounts
        .list_channel_accounts(tenancy::ListChannelAccountsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(error.message().contains("Bearer"), "{}", error.message());
    let unknown = format!("sbk_{}_{}", "0".repeat(32), "a".repeat(64));
    for token in ["nonsense", unknown.as_str()] {
        let error = accounts
            .list_channel_accounts(authorized(tenancy::ListChannelAccountsRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated, "token {token}");
    }

    let key_a = workspace_with_key(&switchboard, "ws_alpha").await;
    let key_b = workspace_with_key(&switchboard, "ws_beta").await;

    // Workspace keys cannot administer the platform; platform keys act on no workspace.
    let error = admin
        .create_workspace(authorized(
            tenancy::CreateWorkspaceRequest {
                id: String::new(),
                name: "sneaky".to_owned(),
            },
            &key_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = accounts
        .list_channel_accounts(authorized(
            tenancy::ListChannelAccountsRequest::default(),
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);

    let created = accounts
        .create_channel_account(authorized(
            new_account("chacc_alpha-wa", "106540352242922"),
            &key_a,
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(created.workspace_id, "ws_alpha");

    // Workspace B sees nothing of A.
    let error = accounts
        .get_channel_account(authorized(
            tenancy::GetChannelAccountRequest {
                id: created.id.clone(),
            },
            &key_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let listed = accounts
        .list_channel_accounts(authorized(tenancy::ListChannelAccountsRequest::default(), &key_b))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.is_empty());
    let error = accounts
        .disable_channel_account(authorized(
            tenancy::DisableChannelAccountRequest {
                id: created.id.clone(),
            },
            &key_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let error = accounts
        .update_channel_account(authorized(
            tenancy::UpdateChannelAccountRequest {
                id: created.id.clone(),
                update: Some(tenancy::ChannelAccountUpdate {
                    name: "taken over".to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".to_owned()],
                }),
            },
            &key_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);

    // A still sees its account, unchanged.
    let fetched = accounts
        .get_channel_account(authorized(
            tenancy::GetChannelAccountRequest {
                id: created.id.clone(),
            },
            &key_a,
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(fetched.name, "Main number");

    // A revoked key stops working (the test runs with a key cache TTL of 0).
    let keys = admin
        .list_api_keys(authorized(
            tenancy::ListApiKeysRequest {
                workspace_id: "ws_alpha".to_owned(),
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
    admin
        .revoke_api_key(authorized(
            tenancy::RevokeApiKeyRequest {
                id: keys[0].id.clone(),
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap();
    let error = accounts
        .list_channel_accounts(authorized(tenancy::ListChannelAccountsRequest::default(), &key_a))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);

    let metrics = switchboard.admin_text("/metrics").await;
    let counted = |code: &str| {
        metrics.lines().any(|line| {
            line.starts_with("switchboard_grpc_requests_total{")
                && line.contains("service=\"switchboard.tenancy.v1.ChannelAccountService\"")
                && line.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(
        counted("Ok") && counted("NotFound") && counted("Unauthenticated"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_oversized_grpc_message_is_refused_with_a_clear_status() {
    let database = TestDatabase::create().await.unwrap();
    let mut env = isolated_env(&database);
    env.push((
        "SWITCHBOARD__SERVER__GRPC_MAX_MESSAGE_BYTES".to_owned(),
        "65536".to_owned(),
    ));
    let switchboard = Switchboard::start(&[], &env);
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let mut admin = WorkspaceAdminServiceClient::new(switchboard.channel().await);
    let error = admin
        .create_workspace(authorized(
            tenancy::CreateWorkspaceRequest {
                id: String::new(),
                name: "x".repeat(100_000),
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::OutOfRange, "{error:?}");
    let error = admin
        .create_workspace(authorized(
            tenancy::CreateWorkspaceRequest {
                id: String::new(),
                name: "x".repeat(1_000),
            },
            BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Code::InvalidArgument,
        "a long name is refused by validation: {error:?}"
    );
    assert!(error.message().contains("name"));
}

#[tokio::test]
async fn only_the_internal_principal_resolves_channel_account_secrets() {
    use switchboard_proto::tenancy::v1::channel_account_directory_service_client::ChannelAccountDirectoryServiceClient;

    let database = TestDatabase::create().await.unwrap();
    let switchboard = Switchboard::start(&[], &isolated_env(&database));
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let key = workspace_with_key(&switchboard, "ws_directory").await;
    ChannelAccountServiceClient::new(switchboard.channel().await)
        .create_channel_account(authorized(new_account("chacc_dir-wa", "555111222"), &key))
        .await
        .unwrap();
    let mut directory = ChannelAccountDirectoryServiceClient::new(switchboard.channel().await);
    let request = || tenancy::ResolveChannelAccountRequest {
        id: "chacc_dir-wa".to_owned(),
    };

    let resolved = directory
        .resolve_channel_account(authorized(request(), switchboard_e2e::INTERNAL_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.account.unwrap().workspace_id, "ws_directory");
    assert_eq!(
        resolved.secrets.get("app_secret").map(String::as_str),
        Some("s3cr3t-app-secret")
    );

    for token in [key.as_str(), BOOTSTRAP_TOKEN] {
        let error = directory
            .resolve_channel_account(authorized(request(), token))
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            Code::PermissionDenied,
            "secrets are for components only"
        );
    }
    // The internal principal cannot act as a customer or an operator either.
    let error = ChannelAccountServiceClient::new(switchboard.channel().await)
        .list_channel_accounts(authorized(
            tenancy::ListChannelAccountsRequest::default(),
            switchboard_e2e::INTERNAL_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = directory
        .resolve_channel_account(authorized(
            tenancy::ResolveChannelAccountRequest {
                id: "chacc_missing".to_owned(),
            },
            switchboard_e2e::INTERNAL_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::NotFound);

    // API keys are checked for other processes by the internal principal only.
    use switchboard_proto::tenancy::v1::api_key_directory_service_client::ApiKeyDirectoryServiceClient;
    let mut keys = ApiKeyDirectoryServiceClient::new(switchboard.channel().await);
    let check = |token: &str| tenancy::AuthenticateApiKeyRequest {
        token: token.to_owned(),
    };
    let known = keys
        .authenticate_api_key(authorized(check(&key), switchboard_e2e::INTERNAL_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (known.workspace_id.as_str(), known.role),
        ("ws_directory", tenancy::ApiKeyRole::WorkspaceAdmin as i32)
    );
    let unknown = keys
        .authenticate_api_key(authorized(check("sbk_nope"), switchboard_e2e::INTERNAL_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let not_internal = keys
        .authenticate_api_key(authorized(check(&key), &key))
        .await
        .unwrap_err();
    assert_eq!(not_internal.code(), Code::PermissionDenied);
}
