#!/bin/bash
# An MLflow model deployed with neither scoring script nor environment, as Azure ML's
# deploy-managed-online-endpoint-mlflow.sh does it; then a custom container, which runs on Azure only.
set -e

ENDPOINT_NAME=${ENDPOINT_NAME:-my-endpoint}

az ml online-endpoint create --name $ENDPOINT_NAME -f endpoint.yml
az ml online-deployment create --name sklearn-deployment --endpoint $ENDPOINT_NAME \
  -f mlflow/sklearn-deployment.yml --all-traffic
az ml online-endpoint invoke --name $ENDPOINT_NAME --request-file mlflow/sample-request.json > invoke-answer.json

if az ml online-deployment create --name custom-container --endpoint $ENDPOINT_NAME \
    -f mlflow/custom-container.yml 2> refused.txt; then
  echo "a custom container was accepted"; exit 1
fi

az ml online-endpoint delete --name $ENDPOINT_NAME --yes
