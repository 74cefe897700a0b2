#!/bin/bash
# A deployment whose environment is one of Azure ML's curated ones, named by its registry URI as the
# docs' examples name it; then one the local workspace has no equivalent for, refused with what to do.
set -e

ENDPOINT_NAME=${ENDPOINT_NAME:-my-endpoint}

az ml online-endpoint create --name $ENDPOINT_NAME -f endpoint.yml
az ml online-deployment create --name curated --endpoint $ENDPOINT_NAME -f curated-deployment.yml --all-traffic
az ml online-endpoint invoke --name $ENDPOINT_NAME --request-file sample-request.json > invoke-answer.json
az ml online-deployment show --name curated --endpoint $ENDPOINT_NAME --query environment -o tsv > environment.txt

if az ml online-deployment create --name gpu --endpoint $ENDPOINT_NAME -f curated-deployment.yml \
    --set environment=azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest \
    2> refused.txt; then
  echo "a GPU image was accepted"; exit 1
fi

az ml online-endpoint delete --name $ENDPOINT_NAME --yes
